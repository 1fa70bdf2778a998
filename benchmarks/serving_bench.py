"""``make bench-serving``: the champion behind BentoML against ``mlflow models serve``, same model, same run.

Measures, over loopback HTTP, the latency of 1,000 sequential single-record predictions (p50,
p99) and the throughput in records/s of 8 concurrent clients sending 100-record requests. The
target: BentoML at least 2x mlflow's throughput and no slower at p50. A benchmark, not a test:
the figures depend on the machine, so nothing here asserts them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from covertype.data.convert import one_hot_to_api
from covertype.data.schema import FEATURE_COLUMNS, NUMERIC_COLUMNS
from covertype.data.source import load_covertype
from covertype.serving.champion import CHAMPION_ALIAS, MODEL_NAME, champion_version, tracking_uri
from covertype.stack.processes import ServiceProcess, free_port
from covertype.stack.serving import bentoml_service, mlflow_model_server

Records = list[dict[str, object]]
#: How each server wants a list of records: BentoML our schema, mlflow its pandas-records form.
BODIES: dict[str, Callable[[Records], dict[str, object]]] = {
    "BentoML": lambda records: {"records": records},
    "mlflow models serve": lambda records: {"dataframe_records": records},
}
ENDPOINTS = {"BentoML": "/predict", "mlflow models serve": "/invocations"}
JSON = {"content-type": "application/json"}


def sample_records() -> Records:
    """The shipped sample's features as typed records (what a client of either server sends)."""
    api = one_hot_to_api(load_covertype("sample"))
    records = api.loc[:, list(FEATURE_COLUMNS)].to_dict("records")
    return [{k: int(v) if k in NUMERIC_COLUMNS else v for k, v in record.items()} for record in records]


def encoded(body: Callable[[Records], dict], chunks: list[Records]) -> list[bytes]:
    """Request bodies encoded once, up front, so the clients' CPU goes to sending, not to JSON."""
    return [json.dumps(body(chunk)).encode() for chunk in chunks]


def latencies(url: str, bodies: list[bytes]) -> list[float]:
    """Seconds per request, sent one after another over one kept-alive connection."""
    seconds = []
    with httpx.Client(timeout=60, headers=JSON) as client:
        for content in bodies:
            started = time.perf_counter()
            client.post(url, content=content).raise_for_status()
            seconds.append(time.perf_counter() - started)
    return seconds


def throughput(url: str, bodies: list[bytes], records_per_body: int, clients: int) -> float:
    """Records/s when ``clients`` concurrent clients share the requests ``bodies`` between them."""

    def client_run(share: list[bytes]) -> int:
        with httpx.Client(timeout=120, headers=JSON) as client:
            for content in share:
                client.post(url, content=content).raise_for_status()
        return len(share) * records_per_body

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        total = sum(pool.map(client_run, [bodies[offset::clients] for offset in range(clients)]))
    return total / (time.perf_counter() - started)


def measure(name: str, server: ServiceProcess, url: str, records: Records, args: argparse.Namespace) -> dict:
    """Start ``server``, warm it up, measure latency then throughput, stop it."""
    body, endpoint = BODIES[name], url + ENDPOINTS[name]
    singles = encoded(body, [[records[index % len(records)]] for index in range(args.requests)])
    requests = args.clients * args.requests_per_client
    starts = [index * args.batch % (len(records) - args.batch) for index in range(requests)]
    batches = encoded(body, [records[start : start + args.batch] for start in starts])
    with server:
        latencies(endpoint, singles[:30])
        single = latencies(endpoint, singles)
        rate = throughput(endpoint, batches, args.batch, args.clients)
    return {
        "server": name,
        "p50_ms": 1000 * statistics.median(single),
        "p99_ms": 1000 * statistics.quantiles(single, n=100)[98],
        "records_per_s": rate,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="serving_bench", description=__doc__)
    parser.add_argument("--requests", type=int, default=1000, help="sequential single-record requests")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100, help="records per concurrent request")
    parser.add_argument("--requests-per-client", type=int, default=25)
    parser.add_argument("--output", type=Path, default=Path("data/08_reporting/serving_bench.json"))
    args = parser.parse_args(argv)
    console = Console()
    version = champion_version()
    console.print(f"{MODEL_NAME}@{CHAMPION_ALIAS} is version {version} in {tracking_uri()}")
    records = sample_records()
    env = {"MLFLOW_TRACKING_URI": tracking_uri()}
    results = []
    with tempfile.TemporaryDirectory(prefix="covertype-bench-") as workdir:
        for name in BODIES:
            port = free_port()
            server = (
                bentoml_service(port, Path(workdir), env)
                if name == "BentoML"
                else mlflow_model_server(port, Path(workdir), f"models:/{MODEL_NAME}/{version}", env)
            )
            console.print(f"measuring {name} ...")
            results.append(measure(name, server, f"http://127.0.0.1:{port}", records, args))

    bento, reference = results
    table = Table(
        title=f"{MODEL_NAME} v{version}: {args.requests} sequential single-record requests, "
        f"then {args.clients} clients x {args.batch}-record requests"
    )
    for header in ("server", "p50 (ms)", "p99 (ms)", "records/s"):
        table.add_column(header, justify="right")
    for row in results:
        table.add_row(
            row["server"], f"{row['p50_ms']:.1f}", f"{row['p99_ms']:.1f}", f"{row['records_per_s']:,.0f}"
        )
    console.print(table)
    ratios = {
        "throughput_ratio": bento["records_per_s"] / reference["records_per_s"],
        "p50_ratio": bento["p50_ms"] / reference["p50_ms"],
    }
    console.print(
        f"BentoML / mlflow: throughput x{ratios['throughput_ratio']:.2f} (target >= 2), "
        f"p50 x{ratios['p50_ratio']:.2f} (target <= 1)"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"model_version": version, "results": results, **ratios}, indent=2))
    console.print(f"written to {args.output}")


if __name__ == "__main__":
    main()
