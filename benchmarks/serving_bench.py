"""``make bench-serving``: the champion behind BentoML against ``mlflow models serve``, same model, same run.

Measures, over loopback HTTP, the latency of 1,000 sequential single-record predictions per
server (p50, p99; the two servers' requests alternate) and the throughput in records/s of 8
concurrent clients sending 100-record requests (the servers take turns, four rounds each). The
target: BentoML at least 2x mlflow's throughput and no slower at p50. A benchmark, not a test: the
figures depend on the machine, so nothing here asserts them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from covertype.config import Settings, load_settings
from covertype.data.convert import one_hot_to_api
from covertype.data.schema import FEATURE_COLUMNS, NUMERIC_COLUMNS
from covertype.data.source import load_covertype
from covertype.paths import PROJECT_ROOT
from covertype.registry import ModelRegistry
from covertype.stack.processes import ServiceProcess, free_port, http_ok
from covertype.stack.serving import BIN, bentoml_service

Records = list[dict[str, object]]
#: How each server wants a list of records: BentoML our schema, mlflow its pandas-records form.
BODIES: dict[str, Callable[[Records], dict[str, object]]] = {
    "BentoML": lambda records: {"records": records},
    "mlflow models serve": lambda records: {"dataframe_records": records},
}
ENDPOINTS = {"BentoML": "/predict", "mlflow models serve": "/invocations"}
JSON = {"content-type": "application/json"}
THROUGHPUT_ROUNDS = 4


def mlflow_model_server(
    port: int, workdir: Path, model_uri: str, env: Mapping[str, str] | None = None
) -> ServiceProcess:
    """``mlflow models serve`` of ``model_uri`` in this venv (no new environment), for comparison."""
    command = [
        str(BIN / "mlflow"), "models", "serve", "--model-uri", model_uri, "--env-manager", "local",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    return ServiceProcess(
        name="mlflow-models-serve",
        command=command,
        ready=http_ok(f"http://127.0.0.1:{port}/ping"),
        log_path=workdir / "mlflow_models_serve.log",
        # It execs `uvicorn` by name: this venv's, even when the venv is not activated.
        env={"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})},
        cwd=PROJECT_ROOT,
        start_timeout=240,
    )


def sample_records() -> Records:
    """The shipped sample's features as typed records (what a client of either server sends)."""
    api = one_hot_to_api(load_covertype("sample"))
    records = api.loc[:, list(FEATURE_COLUMNS)].to_dict("records")
    return [{k: int(v) if k in NUMERIC_COLUMNS else v for k, v in record.items()} for record in records]


def encoded(body: Callable[[Records], dict], chunks: list[Records]) -> list[bytes]:
    """Request bodies encoded once, up front, so the clients' CPU goes to sending, not to JSON."""
    return [json.dumps(body(chunk)).encode() for chunk in chunks]


def latencies(targets: dict[str, tuple[str, list[bytes]]]) -> dict[str, list[float]]:
    """Seconds per request for each server, sent one at a time and alternating between the servers.

    Alternating puts both servers under the same machine load at the same moments (this machine is
    shared), so their p50s compare fairly; each keeps one kept-alive connection.
    """
    seconds: dict[str, list[float]] = {name: [] for name in targets}
    clients = {name: httpx.Client(timeout=60, headers=JSON) for name in targets}
    try:
        for index in range(min(len(bodies) for _, bodies in targets.values())):
            for name, (url, bodies) in targets.items():
                started = time.perf_counter()
                clients[name].post(url, content=bodies[index]).raise_for_status()
                seconds[name].append(time.perf_counter() - started)
    finally:
        for client in clients.values():
            client.close()
    return seconds


def timed_load(url: str, bodies: list[bytes], records_per_body: int, clients: int) -> tuple[int, float]:
    """Records sent and seconds taken when ``clients`` concurrent clients share the requests ``bodies``."""

    def client_run(share: list[bytes]) -> int:
        with httpx.Client(timeout=120, headers=JSON) as client:
            for content in share:
                client.post(url, content=content).raise_for_status()
        return len(share) * records_per_body

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        total = sum(pool.map(client_run, [bodies[offset::clients] for offset in range(clients)]))
    return total, time.perf_counter() - started


def request_bodies(name: str, records: Records, args: argparse.Namespace) -> tuple[list[bytes], list[bytes]]:
    """The same single-record and ``args.batch``-record requests for every server, in its own form."""
    singles = [[records[index % len(records)]] for index in range(args.requests)]
    starts = [
        index * args.batch % (len(records) - args.batch)
        for index in range(args.clients * args.requests_per_client)
    ]
    return encoded(BODIES[name], singles), encoded(
        BODIES[name], [records[s : s + args.batch] for s in starts]
    )


def measure(
    servers: dict[str, tuple[ServiceProcess, str]], records: Records, args: argparse.Namespace
) -> list[dict]:
    """Latency with both servers up (interleaved), then throughput with the servers taking turns."""
    bodies = {name: request_bodies(name, records, args) for name in servers}
    endpoints = {name: url + ENDPOINTS[name] for name, (_, url) in servers.items()}
    with ExitStack() as running:
        for server, _ in servers.values():
            running.enter_context(server)
        latencies({name: (endpoints[name], singles[:30]) for name, (singles, _) in bodies.items()})  # warm-up
        single = latencies({name: (endpoints[name], singles) for name, (singles, _) in bodies.items()})
        for name, (_, batches) in bodies.items():
            # Warm-up under the same concurrent load first: BentoML's batching adapts to the traffic.
            timed_load(endpoints[name], batches[: len(batches) // 4], args.batch, args.clients)
        sent, seconds = dict.fromkeys(bodies, 0), dict.fromkeys(bodies, 0.0)
        for round_number in range(THROUGHPUT_ROUNDS):  # servers take turns, so load drift hits both
            for name, (_, batches) in bodies.items():
                share = batches[round_number::THROUGHPUT_ROUNDS]
                records_sent, elapsed = timed_load(endpoints[name], share, args.batch, args.clients)
                sent[name] += records_sent
                seconds[name] += elapsed
        rates = {name: sent[name] / seconds[name] for name in bodies}
    return [
        {
            "server": name,
            "p50_ms": 1000 * statistics.median(single[name]),
            "p99_ms": 1000 * statistics.quantiles(single[name], n=100)[98],
            "records_per_s": rates[name],
        }
        for name in servers
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="serving_bench", description=__doc__)
    parser.add_argument("--requests", type=int, default=1000, help="sequential single-record requests")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100, help="records per concurrent request")
    parser.add_argument("--requests-per-client", type=int, default=25)
    parser.add_argument("--output", type=Path, default=Path("data/08_reporting/serving_bench.json"))
    args = parser.parse_args(argv)
    console = Console()
    registry = ModelRegistry.from_settings(load_settings())
    version = registry.champion().version
    console.print(
        f"{registry.describe(registry.champion_alias)} is version {version} in {registry.registry_uri}"
    )
    records = sample_records()
    env = Settings.environment(
        tracking_uri=registry.tracking_uri, registry_uri_override=registry.registry_uri
    )
    with tempfile.TemporaryDirectory(prefix="covertype-bench-") as workdir:
        bento_port, mlflow_port = free_port(), free_port()
        servers = {
            "BentoML": (bentoml_service(bento_port, Path(workdir), env), f"http://127.0.0.1:{bento_port}"),
            "mlflow models serve": (
                mlflow_model_server(
                    mlflow_port, Path(workdir), f"models:/{registry.model_name}/{version}", env
                ),
                f"http://127.0.0.1:{mlflow_port}",
            ),
        }
        console.print("starting both servers, then measuring ...")
        results = measure(servers, records, args)

    bento, reference = results
    table = Table(
        title=f"{registry.model_name} v{version}: {args.requests} sequential single-record requests, "
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
