"""``make bench-scale``: the course's ten-batch schedule at full volume through the real pipelines.

Our batch API serves ``--rows`` rows (581,012 by default: the full UCI set when it was downloaded
with ``covertype-data --source full``, else a SYNTHETIC resampling of the real sample's training
split, see ``covertype.data.resample``) as the course does: ten batches, a random tenth of the
current batch per call, the batch rotating every ``--window-seconds`` (the course's 300 s,
compressed). Each cycle runs, as ``make demo`` does, the ``ingestion``, ``feature_engineering`` and
``training`` pipelines in this process, each a Kedro session of the default (embedded) environment
in a temporary folder, with the default training budget. Twice: harvest off (one call per window,
as before) and harvest on (``harvest`` of parameters_ingestion.yml, with its window set to the
compressed one and a shorter pause).

Per cycle: the distinct rows collected so far, the calls, the seconds of each pipeline, the size on
disk of the model the cycle registered. At the end, the final champion of each run is scored on
REAL rows no model was trained on: the test side of the hash split of the real sample (the
synthetic source never serves them); with the real full set, on its own test split. Results go to
``data/08_reporting/scale_bench.json``, rewritten after every cycle.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from kedro.config import OmegaConfigLoader
from kedro.framework.session import KedroSession
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sklearn.metrics import accuracy_score, f1_score

from covertype.benchmark_results import save_result, this_command
from covertype.config import load_settings
from covertype.data.convert import api_records_to_frame, one_hot_to_api
from covertype.data.resample import real_holdout
from covertype.data.schema import API_COLUMNS, FEATURE_COLUMNS, TARGET_COLUMN
from covertype.data.source import FULL_DATASET, RAW_DATA_DIR, load_covertype
from covertype.demo import bootstrap_quietly, training_store, wait_for_next_batch
from covertype.paths import PROJECT_ROOT
from covertype.settings import CONFIG_LOADER_ARGS
from covertype.stack.processes import free_port
from covertype.stack.services import batch_api

BATCHES = 10
REPORTING = PROJECT_ROOT / "data" / "08_reporting"


def project_parameters() -> dict:
    return OmegaConfigLoader(str(PROJECT_ROOT / "conf"), **CONFIG_LOADER_ARGS)["parameters"]


def run(pipeline: str, params: dict[str, object]) -> float:
    """One ``kedro run --pipeline <pipeline>`` as a fresh session; its wall time in seconds."""
    started = time.perf_counter()
    with KedroSession.create(project_path=PROJECT_ROOT, env="local", runtime_params=params) as session:
        session.run(pipeline_names=[pipeline])
    return time.perf_counter() - started


def load(name: str) -> object:
    with KedroSession.create(project_path=PROJECT_ROOT, env="local") as session:
        return session.load_context().catalog.load(name)


def distinct_rows(raw_db: Path) -> int:
    with sqlite3.connect(raw_db) as connection:
        return connection.execute("SELECT COUNT(*) FROM raw_covertype").fetchone()[0]


def holdout_scores(model, holdout: pd.DataFrame) -> dict[str, float]:
    """Accuracy and macro-F1 on REAL rows no model was trained on, typed as the API's records."""
    records = api_records_to_frame(holdout.loc[:, list(API_COLUMNS)].to_numpy().tolist())
    predicted = model.predict(records.loc[:, list(FEATURE_COLUMNS)])
    truth = records[TARGET_COLUMN].astype(int)
    return {
        "rows": len(records),
        "accuracy": accuracy_score(truth, predicted),
        "macro_f1": f1_score(truth, predicted, average="macro"),
    }


def one_run(args: argparse.Namespace, harvest_on: bool, source: str, report: dict, console: Console) -> dict:
    """The ten windows with harvest on or off in a fresh temporary project state."""
    label = "harvest on" if harvest_on else "harvest off"
    parameters = project_parameters()
    harvest = {
        **parameters["harvest"],
        "enabled": harvest_on,
        "window_seconds": args.window_seconds,
        "pause_seconds": args.pause_seconds,
        "closing_margin_seconds": args.closing_margin_seconds,
    }
    result: dict[str, object] = {"harvest": harvest, "cycles": []}
    report["runs"][label] = result
    with tempfile.TemporaryDirectory(prefix="covertype-scale-") as folder:
        workdir = Path(folder)
        os.environ.update(
            {
                "COVERTYPE_RAW_STORE_URL": f"sqlite:///{workdir}/raw.db",
                "MLFLOW_TRACKING_URI": f"sqlite:///{workdir}/mlflow.db",
                "COVERTYPE_DATA_DIR": str(workdir / "data"),
            }
        )
        os.chdir(workdir)
        store = training_store("local", load_settings())
        port = free_port()
        api = batch_api(
            port, workdir, args.window_seconds, rows_per_request="course", seed=args.seed,
            source=source, rows=None if source == "full" else args.rows,
        )  # fmt: skip
        console.print(f"[bold]{label}[/bold]: starting the batch API ({source}, {args.rows:,} rows) ...")
        columns = (
            TextColumn(f"[bold]{label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
        )
        holdout = holdout_rows(source, parameters["feature_engineering"]["test_fraction"])
        with api, Progress(*columns, console=console) as progress:
            params = {"batch_api_url": f"http://127.0.0.1:{port}", "harvest": harvest}
            task = progress.add_task("batch 1", total=BATCHES)
            held_out: dict[str, float] = {}
            while True:
                ingest = run("ingestion", params)
                summary = load("ingestion_summary")
                if summary["collection_finished"]:
                    break
                features = run("feature_engineering", params)
                training = run("training", params)
                decision = store.latest_training_run().data.tags["promotion_decision"]
                newest = store.registry.versions()[0] if decision != "skipped" else None
                if decision == "promoted" or not held_out:
                    held_out = holdout_scores(store.registry.load_model(store.registry.champion()), holdout)
                cycle = {
                    "batch": summary["batch_number"],
                    "calls": summary["harvest"]["calls"],
                    "rows_received": summary["rows_received"],
                    "batch_distinct_rows": summary["rows_distinct"],
                    "distinct_rows_collected": distinct_rows(workdir / "raw.db"),
                    "ingest_s": round(ingest, 1),
                    "features_s": round(features, 1),
                    "training_s": round(training, 1),
                    "cycle_s": round(ingest + features + training, 1),
                    "decision": decision,
                    "model_mb": round(store.registry.artifact_bytes(newest) / 1e6, 1) if newest else None,
                    "champion_holdout": held_out,
                }
                result["cycles"].append(cycle)
                write(report)
                progress.console.print(
                    f"{label} batch {cycle['batch']:>2}: "
                    f"{cycle['distinct_rows_collected']:>8,} distinct rows "
                    f"({cycle['calls']} calls) | ingest {ingest:6.1f} s | features {features:6.1f} s | "
                    f"training {training:6.1f} s | {decision}"
                    + (f", model {cycle['model_mb']:.1f} MB" if newest else "")
                    + f" | champion on real held-out rows: accuracy {held_out['accuracy']:.4f},"
                    f" macro-F1 {held_out['macro_f1']:.4f}"
                )
                progress.update(
                    task, completed=cycle["batch"], description=f"batch {cycle['batch']}: {decision}"
                )
                wait_for_next_batch(params["batch_api_url"], group_number=1)
        champion = store.registry.champion()
        result["champion"] = {
            "version": champion.version,
            "model_mb": round(store.registry.artifact_bytes(champion) / 1e6, 1),
            "holdout": held_out,
        }
        write(report)
        os.chdir(PROJECT_ROOT)
    return result


def holdout_rows(source: str, test_fraction: float) -> pd.DataFrame:
    """The REAL rows to score on: the sample's test side (synthetic), or the full set's test side."""
    rows = one_hot_to_api(load_covertype("sample" if source == "synthetic" else "full"))
    return real_holdout(rows, test_fraction)


def write(report: dict) -> None:
    output = REPORTING / report["output"]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))


def print_summary(console: Console, report: dict) -> None:
    table = Table(title=f"Per cycle ({report['data']})")
    for header in (
        "run", "batch", "calls", "distinct rows", "ingest s", "features s", "training s", "cycle s",
        "model MB",
    ):  # fmt: skip
        table.add_column(header, justify="right")
    for label, result in report["runs"].items():
        for cycle in result["cycles"]:
            table.add_row(
                label, str(cycle["batch"]), str(cycle["calls"]), f"{cycle['distinct_rows_collected']:,}",
                f"{cycle['ingest_s']:.1f}", f"{cycle['features_s']:.1f}", f"{cycle['training_s']:.1f}",
                f"{cycle['cycle_s']:.1f}", "-" if cycle["model_mb"] is None else f"{cycle['model_mb']:.1f}",
            )  # fmt: skip
    console.print(table)
    scores = Table(title="Final champion on REAL held-out rows (never served, never trained on)")
    for header in ("run", "distinct rows", "version", "model MB", "held-out rows", "accuracy", "macro-F1"):
        scores.add_column(header, justify="right")
    for label, result in report["runs"].items():
        if "champion" not in result:
            continue
        champion, holdout = result["champion"], result["champion"]["holdout"]
        scores.add_row(
            label, f"{result['cycles'][-1]['distinct_rows_collected']:,}", str(champion["version"]),
            f"{champion['model_mb']:.1f}", f"{holdout['rows']:,}", f"{holdout['accuracy']:.4f}",
            f"{holdout['macro_f1']:.4f}",
        )  # fmt: skip
    console.print(scores)


def run_modes_apart(args: argparse.Namespace, argv: list[str], console: Console) -> None:
    """Harvest off, then on, each in a process of its own (MLflow keeps the first run's SQLite store
    open, and its folder is gone by the second run), then both in one report and one summary."""
    stem = Path(args.output).stem
    report: dict = {}
    for mode in ("off", "on"):
        output = f"{stem}_{mode}.json"
        command = [sys.executable, __file__, *argv, "--harvest", mode, "--output", output, "--part"]
        subprocess.run(command, cwd=PROJECT_ROOT, check=True)
        part = json.loads((REPORTING / output).read_text())
        report = {**part, **report, "runs": {**report.get("runs", {}), **part["runs"]}}
    report["output"] = args.output
    write(report)
    print_summary(console, report)
    save(report, console)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="scale_bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, default=FULL_DATASET.rows, help="rows served (a smaller run: 58101)"
    )
    parser.add_argument("--window-seconds", type=float, default=90.0, help="the compressed batch window")
    parser.add_argument("--pause-seconds", type=float, default=0.2, help="the harvest's pause between calls")
    parser.add_argument("--closing-margin-seconds", type=float, default=3.0)
    parser.add_argument("--harvest", choices=["both", "on", "off"], default="both")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="scale_bench.json", help="the report, in data/08_reporting/")
    parser.add_argument("--part", action="store_true", help=argparse.SUPPRESS)  # one half of --harvest both
    args = parser.parse_args(argv)
    console = Console()
    if args.harvest == "both":
        run_modes_apart(args, argv if argv is not None else sys.argv[1:], console)
        return
    bootstrap_quietly(REPORTING / Path(args.output).with_suffix(".log"), console)
    downloaded = (RAW_DATA_DIR / FULL_DATASET.filename).exists() and args.rows == FULL_DATASET.rows
    source = "full" if downloaded else "synthetic"
    data = (
        "the real full UCI set"
        if downloaded
        else f"SYNTHETIC: {args.rows:,} rows resampled from the real sample's training split"
    )
    console.print(f"Data: [bold]{data}[/bold]; a new batch every {args.window_seconds:g} s")
    report = {
        "data": data, "rows": args.rows, "window_seconds": args.window_seconds, "output": args.output,
        "runs": {},
    }  # fmt: skip
    one_run(args, args.harvest == "on", source, report, console)
    print_summary(console, report)
    if not args.part:
        save(report, console)


def save(report: dict, console: Console) -> None:
    """The finished report as data (benchmarks/results/), with harvest on against off when both ran."""
    runs = report["runs"]
    ratios = {}
    if {"harvest off", "harvest on"} <= runs.keys():
        off, on = runs["harvest off"]["cycles"][-1], runs["harvest on"]["cycles"][-1]
        ratios = {
            "distinct rows collected: harvest on / off": on["distinct_rows_collected"]
            / off["distinct_rows_collected"],
            "last cycle's seconds: harvest on / off": on["cycle_s"] / off["cycle_s"],
        }
    modes = "" if len(runs) > 1 else "-" + next(iter(runs)).replace(" ", "-")
    name = ("scale" if report["rows"] == FULL_DATASET.rows else f"scale-{report['rows']}") + modes
    output = save_result(
        name, {k: v for k, v in report.items() if k != "output"}, this_command(), ratios=ratios
    )
    console.print(
        f"Written to {output.relative_to(PROJECT_ROOT)} (per cycle: {REPORTING / report['output']})"
    )


if __name__ == "__main__":
    main()
