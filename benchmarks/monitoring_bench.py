"""``make bench-monitoring``: what monitoring costs, measured in one run.

1. One batch's drift report at the course's volume: 58,101 rows x the 12 fields against a
   465,000-row reference (both SYNTHETIC resamplings of the real sample's training split,
   covertype.data.resample), through the monitoring pipeline's own node (``report_batch_drift``):
   the median of ``--repeats`` runs. Target: under 5 s.
2. The prediction log's overhead on the service: two real ``bentoml serve`` of the same champion,
   one with the log (COVERTYPE_PREDICTION_LOG=1, a fresh folder), one without, measured as
   ``make bench-serving`` measures ours (benchmarks/serving_bench.py): p50 of sequential
   single-record requests, the two services alternating, then records/s of concurrent 100-record
   requests, the services taking turns. Target: the log costs under 5% of throughput and p50.

The champion is the settings' registry's (MLFLOW_TRACKING_URI); without one, a cycle of the
project's pipelines trains one first into a temporary store. A benchmark, not a test: it asserts
nothing; the result goes to benchmarks/results/monitoring.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from rich.console import Console

from benchmarks.serving_bench import encoded, latencies, sample_records, timed_load
from covertype.benchmark_results import save_result, this_command
from covertype.config import Settings, load_settings
from covertype.data.convert import api_records_to_frame, one_hot_to_api
from covertype.data.resample import resample_training_split
from covertype.data.source import load_covertype
from covertype.datasets.prediction_log_dataset import PredictionLogDataset
from covertype.paths import PROJECT_ROOT
from covertype.pipelines.monitoring.nodes import report_batch_drift
from covertype.registry import ModelRegistry
from covertype.stack.processes import free_port
from covertype.stack.services import batch_api
from covertype.stack.serving import BIN, bentoml_service

THROUGHPUT_ROUNDS = 4
WITH_LOG, WITHOUT_LOG = "with the prediction log", "without it"


def drift_report_seconds(reference_rows: int, batch_rows: int, repeats: int) -> dict[str, object]:
    """Seconds of the batch report node at this volume (median of ``repeats``), and what it found."""
    sample = one_hot_to_api(load_covertype("sample"))
    rows = api_records_to_frame(
        resample_training_split(sample, reference_rows + batch_rows, 0.2, seed=0).to_numpy().tolist()
    )
    reference, batch = rows.head(reference_rows), rows.iloc[reference_rows:]
    batch = batch.assign(group_number=1, last_batch_number=1)
    info = {"name": "benchmark reference", "version": "0"}
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        report, fields = report_batch_drift(batch, reference, info, {})
        seconds.append(time.perf_counter() - started)
    return {
        "median_seconds": statistics.median(seconds),
        "runs_seconds": [round(value, 3) for value in seconds],
        "tests": sorted(set(fields["test"])),
        "drifted_fields": int(report.loc[0, "drifted_fields"]),
    }


def champion_env(workdir: Path, console: Console) -> dict[str, str]:
    """The settings' registry when it has a champion, else a temporary one trained by one cycle."""
    settings = load_settings()
    if ModelRegistry.from_settings(settings).champion() is not None:
        return Settings.environment(
            tracking_uri=settings.tracking_uri, registry_uri_override=settings.registry_uri
        )
    console.print(
        "no champion in the settings' registry: one cycle of the pipelines trains one (about a minute)"
    )
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{workdir}/mlflow.db",
        "COVERTYPE_RAW_STORE_URL": f"sqlite:///{workdir}/raw.db",
        "COVERTYPE_DATA_DIR": str(workdir / "data"),
    }
    port = free_port()
    with batch_api(port, workdir, 300, rows_per_request="all", seed=0):
        command = [str(BIN / "kedro"), "run", "--params", f"batch_api_url=http://127.0.0.1:{port}"]
        subprocess.run(command, cwd=PROJECT_ROOT, env={**os.environ, **env}, check=True, capture_output=True)
    return env


def log_overhead(env: dict[str, str], workdir: Path, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """p50 (ms) and records/s of the two services, measured alternately in the same run."""
    records = sample_records()
    singles = encoded(
        lambda chunk: {"records": chunk}, [[records[i % len(records)]] for i in range(args.requests)]
    )
    starts = [
        i * args.batch % (len(records) - args.batch) for i in range(args.clients * args.requests_per_client)
    ]
    batches = encoded(lambda chunk: {"records": chunk}, [records[s : s + args.batch] for s in starts])
    common = {**env, "COVERTYPE_CHAMPION_POLL_SECONDS": "0"}
    services = {
        WITH_LOG: {
            **common,
            "COVERTYPE_PREDICTION_LOG": "1",
            "COVERTYPE_PREDICTION_LOG_DIR": str(workdir / "log"),
        },
        WITHOUT_LOG: {**common, "COVERTYPE_PREDICTION_LOG": "0"},
    }
    ports = {name: free_port() for name in services}
    urls = {name: f"http://127.0.0.1:{ports[name]}/predict" for name in services}
    with ExitStack() as running:
        for name, service_env in services.items():
            running.enter_context(bentoml_service(ports[name], workdir / name.replace(" ", "_"), service_env))
        latencies({name: (url, singles[:30]) for name, url in urls.items()})  # warm-up
        single = latencies({name: (url, singles) for name, url in urls.items()})
        for url in urls.values():
            timed_load(url, batches[: len(batches) // 4], args.batch, args.clients)
        sent, seconds = dict.fromkeys(urls, 0), dict.fromkeys(urls, 0.0)
        for round_number in range(THROUGHPUT_ROUNDS):
            for name, url in urls.items():
                records_sent, elapsed = timed_load(
                    url, batches[round_number::THROUGHPUT_ROUNDS], args.batch, args.clients
                )
                sent[name] += records_sent
                seconds[name] += elapsed
    logged = len(PredictionLogDataset(path=str(workdir / "log")).load())
    return {
        name: {
            "p50_ms": 1000 * statistics.median(single[name]),
            "p95_ms": 1000 * statistics.quantiles(single[name], n=100)[94],
            "records_per_s": sent[name] / seconds[name],
            **({"records_logged": logged} if name == WITH_LOG else {}),
        }
        for name in urls
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="monitoring_bench", description=__doc__)
    parser.add_argument("--reference-rows", type=int, default=465_000)
    parser.add_argument("--batch-rows", type=int, default=58_101)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1000, help="sequential single-record requests")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100, help="records per concurrent request")
    parser.add_argument("--requests-per-client", type=int, default=25)
    args = parser.parse_args(argv)
    console = Console(width=150)
    volume = f"{args.batch_rows:,} rows against {args.reference_rows:,}"
    console.print(f"drift report: {volume} (SYNTHETIC resampling) ...")
    report = drift_report_seconds(args.reference_rows, args.batch_rows, args.repeats)
    median = f"{report['median_seconds']:.2f} s (median of {args.repeats}; target < 5 s)"
    console.print(f"  {median}, tests {report['tests']}")
    with tempfile.TemporaryDirectory(prefix="covertype-bench-monitoring-") as folder:
        workdir = Path(folder)
        env = champion_env(workdir, console)
        console.print("two services of the champion, with and without the prediction log ...")
        serving = log_overhead(env, workdir, args)
    for name, row in serving.items():
        speed = (
            f"p50 {row['p50_ms']:.2f} ms, p95 {row['p95_ms']:.2f} ms, {row['records_per_s']:,.0f} records/s"
        )
        console.print(f"  {name}: {speed}")
    ratios = {
        "p50 with / without the log": serving[WITH_LOG]["p50_ms"] / serving[WITHOUT_LOG]["p50_ms"],
        "throughput with / without the log": serving[WITH_LOG]["records_per_s"]
        / serving[WITHOUT_LOG]["records_per_s"],
        "drift report seconds / 5 s target": report["median_seconds"] / 5,
    }
    for label, value in ratios.items():
        console.print(f"  {label}: {value:.3f}")
    figures = {
        "drift report": {"reference rows": args.reference_rows, "batch rows": args.batch_rows, **report},
        "prediction log": serving,
        "settings": vars(args),
    }
    notes = (
        "Targets (issue 23): a report under 5 s; the log costs under 5% of p50 and throughput "
        "(p50 ratio <= 1.05, throughput ratio >= 0.95). The data of the report is a SYNTHETIC "
        "resampling of the real sample's training split."
    )
    path = save_result("monitoring", figures, this_command(), ratios=ratios, notes=notes)
    console.print(f"written to {path}")


if __name__ == "__main__":
    main()
