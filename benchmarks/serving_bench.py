"""``make bench-serving``: our ``/predict`` beside the framework's floor and ``mlflow models serve``.

Four servers, all started at once from this venv: our BentoML service (the registry's champion),
a BentoML echo and a FastAPI+uvicorn echo with our request schema (``benchmarks/echo_services.py``:
the floor, validation and HTTP without a model), and ``mlflow models serve`` of the same champion.
Measured over loopback: the latency of 1,000 sequential single-record requests per server (p50, p95,
p99; the servers' requests alternate, so all of them see the same machine load at the same moments),
then the throughput in records/s of 8 concurrent clients sending 100-record requests (after a
warm-up; the servers take turns, four rounds each) with each server's own CPU time per 1,000
records answered (its processes' user + system time, which the machine's other load moves least),
and our ``/explain``'s p50 for one record.
``--model`` measures another registered version than the champion (a LightGBM one, say): ours is
asked for it by the request's ``model``, mlflow serves that version. Ours then resolves the selector
at every request (a registry call: aliases move), which the champion does not pay; to compare a
family's serving itself, point the champion alias at its version instead. Targets (issue 26), as ratios in
the same run: our throughput at least 3x mlflow's and 0.8x the BentoML echo's, our single-record
p50 at most 1.3x the BentoML echo's. A benchmark, not a test: the figures depend on the machine, so
nothing here asserts them; the result is saved as ``benchmarks/results/<--result>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import psutil
from rich.console import Console
from rich.table import Table

from covertype.benchmark_results import save_result, this_command
from covertype.config import Settings, load_settings
from covertype.data.convert import one_hot_to_api
from covertype.data.schema import FEATURE_COLUMNS, NUMERIC_COLUMNS
from covertype.data.source import load_covertype
from covertype.paths import PROJECT_ROOT
from covertype.registry import ModelRegistry
from covertype.stack.processes import ServiceProcess, free_port, http_ok
from covertype.stack.serving import BIN, bentoml_service

Records = list[dict[str, object]]
OURS, BENTOML_ECHO, FASTAPI_ECHO, MLFLOW = (
    "covertype /predict (BentoML)",
    "BentoML echo",
    "FastAPI+uvicorn echo",
    "mlflow models serve",
)
#: How each server wants a list of records: ours and the echoes our schema, mlflow its pandas-records form.
BODIES: dict[str, Callable[[Records], dict[str, object]]] = {
    OURS: lambda records: {"records": records},
    BENTOML_ECHO: lambda records: {"records": records},
    FASTAPI_ECHO: lambda records: {"records": records},
    MLFLOW: lambda records: {"dataframe_records": records},
}
ENDPOINTS = {OURS: "/predict", BENTOML_ECHO: "/predict", FASTAPI_ECHO: "/predict", MLFLOW: "/invocations"}
ECHO_MODULE = "benchmarks.echo_services"
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


def bentoml_echo_server(port: int, workdir: Path) -> ServiceProcess:
    """``bentoml serve`` of ``EchoService``: BentoML's floor with our request schema."""
    command = [
        str(BIN / "bentoml"), "serve", f"{ECHO_MODULE}:EchoService",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    return ServiceProcess(
        name="bentoml-echo",
        command=command,
        ready=http_ok(f"http://127.0.0.1:{port}/readyz"),
        log_path=workdir / "bentoml_echo.log",
        env={"BENTOML_HOME": str(workdir / "bentoml_echo_home"), "BENTOML_DO_NOT_TRACK": "True"},
        cwd=PROJECT_ROOT,
        start_timeout=240,
    )


def fastapi_echo_server(port: int, workdir: Path) -> ServiceProcess:
    """uvicorn serving ``fastapi_app``: the same echo in FastAPI, the lighter framework's floor."""
    command = [
        str(BIN / "uvicorn"), f"{ECHO_MODULE}:fastapi_app", "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    return ServiceProcess(
        name="fastapi-echo",
        command=command,
        ready=http_ok(f"http://127.0.0.1:{port}/docs"),
        log_path=workdir / "fastapi_echo.log",
        cwd=PROJECT_ROOT,
        start_timeout=120,
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

    Alternating puts the servers under the same machine load at the same moments (this machine is
    shared), so their p50s compare fairly; the order turns at every request (the first of a turn was
    up to 4% slower than the second, whichever server it was); each keeps one kept-alive connection.
    """
    seconds: dict[str, list[float]] = {name: [] for name in targets}
    clients = {name: httpx.Client(timeout=60, headers=JSON) for name in targets}
    try:
        for index in range(min(len(bodies) for _, bodies in targets.values())):
            for name in in_turn(targets, index):
                url, bodies = targets[name]
                started = time.perf_counter()
                clients[name].post(url, content=bodies[index]).raise_for_status()
                seconds[name].append(time.perf_counter() - started)
    finally:
        for client in clients.values():
            client.close()
    return seconds


def in_turn(names: Iterable[str], turn: int) -> list[str]:
    """``names`` rotated by ``turn``: over as many turns as names, each name comes at every position."""
    names = list(names)
    shift = turn % len(names)
    return names[shift:] + names[:shift]


def throughput(
    targets: Mapping[str, tuple[ServiceProcess, str, list[bytes]]], records_per_body: int, clients: int
) -> dict[str, dict[str, float]]:
    """Records/s and the server's own CPU ms per 1,000 records, of each (server, URL, bodies).

    A warm-up under the same concurrent load first (BentoML's batching adapts to the traffic), then
    ``THROUGHPUT_ROUNDS`` rounds in which the servers take turns on a share of the bodies, in an order
    that turns each round, so that the machine's load drift and a turn's position hit all of them.
    """
    for _, url, bodies in targets.values():
        timed_load(url, bodies[: len(bodies) // 4], records_per_body, clients)
    sent, seconds, cpu = dict.fromkeys(targets, 0), dict.fromkeys(targets, 0.0), dict.fromkeys(targets, 0.0)
    for round_number in range(THROUGHPUT_ROUNDS):
        for name in in_turn(targets, round_number):
            server, url, bodies = targets[name]
            cpu_before = cpu_seconds(server)
            records_sent, elapsed = timed_load(
                url, bodies[round_number::THROUGHPUT_ROUNDS], records_per_body, clients
            )
            cpu[name] += cpu_seconds(server) - cpu_before
            sent[name] += records_sent
            seconds[name] += elapsed
    return {
        name: {
            "records_per_s": sent[name] / seconds[name],
            # What the machine's load barely moves: the server's own CPU for the records it answered.
            "cpu_ms_per_1000_records": 1_000_000 * cpu[name] / sent[name],
        }
        for name in targets
    }


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


def cpu_seconds(server: ServiceProcess) -> float:
    """The CPU time (user + system) the server's processes have used so far, its workers included."""
    root = psutil.Process(server.process.pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:  # a process that ended since: its time is gone with it
            continue
        total += times.user + times.system
    return total


def request_bodies(name: str, records: Records, args: argparse.Namespace) -> tuple[list[bytes], list[bytes]]:
    """The same single-record and ``args.batch``-record requests for every server, in its own form."""
    singles = [[records[index % len(records)]] for index in range(args.requests)]
    starts = [
        index * args.batch % (len(records) - args.batch)
        for index in range(args.clients * args.requests_per_client)
    ]
    body = BODIES[name]
    if name == OURS and args.model is not None:
        body = lambda chunk: {"records": chunk, "model": args.model}  # noqa: E731
    return encoded(body, singles), encoded(body, [records[s : s + args.batch] for s in starts])


def measure(
    servers: dict[str, tuple[ServiceProcess, str]], records: Records, args: argparse.Namespace
) -> list[dict]:
    """Latency with every server up (interleaved), then throughput with the servers taking turns."""
    bodies = {name: request_bodies(name, records, args) for name in servers}
    endpoints = {name: url + ENDPOINTS[name] for name, (_, url) in servers.items()}
    with ExitStack() as running:
        for server, _ in servers.values():
            running.enter_context(server)
        latencies({name: (endpoints[name], singles[:30]) for name, (singles, _) in bodies.items()})  # warm-up
        single = latencies({name: (endpoints[name], singles) for name, (singles, _) in bodies.items()})
        loads = throughput(
            {name: (servers[name][0], endpoints[name], batches) for name, (_, batches) in bodies.items()},
            args.batch,
            args.clients,
        )
        explain_url = servers[OURS][1] + "/explain"
        explain_bodies = bodies[OURS][0][: args.explanations]
        latencies({OURS: (explain_url, explain_bodies[:3])})  # the first loads the model's trees
        explained = latencies({OURS: (explain_url, explain_bodies)})[OURS]
        info = httpx.post(servers[OURS][1] + "/model_info", json={}, timeout=30).json()
        if args.model is not None:
            info = next(
                version
                for version in httpx.get(servers[OURS][1] + "/models", timeout=30).json()["versions"]
                if version["version"] == str(args.version)
            )
    return [
        {
            "server": name,
            "p50_ms": 1000 * statistics.median(single[name]),
            "p95_ms": 1000 * statistics.quantiles(single[name], n=100)[94],
            "p99_ms": 1000 * statistics.quantiles(single[name], n=100)[98],
            **loads[name],
            **(
                {
                    "prediction_path": info.get("prediction_path") or info["tags"].get("serving_engine"),
                    "explain_p50_ms": 1000 * statistics.median(explained),
                }
                if name == OURS
                else {}
            ),
        }
        for name in servers
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="serving_bench", description=__doc__)
    parser.add_argument("--requests", type=int, default=1000, help="sequential single-record requests")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100, help="records per concurrent request")
    parser.add_argument("--requests-per-client", type=int, default=25)
    parser.add_argument("--explanations", type=int, default=100, help="sequential one-record /explain")
    parser.add_argument("--model", help="an alias or version number to measure instead of the champion")
    parser.add_argument(
        "--result", default="serving", help="the saved result's name (benchmarks/results/<name>.json)"
    )
    args = parser.parse_args(argv)
    console = Console(width=150)  # the table whole, also in a log or a pipe
    registry = ModelRegistry.from_settings(load_settings())
    resolved = registry.resolve(args.model)
    version = args.version = resolved.version
    family = resolved.tags.get("model_family", "unknown")
    console.print(
        f"{registry.model_name} {args.model or registry.champion_alias} is version {version} ({family}) "
        f"in {registry.registry_uri}"
    )
    records = sample_records()
    env = Settings.environment(
        tracking_uri=registry.tracking_uri, registry_uri_override=registry.registry_uri
    )
    with tempfile.TemporaryDirectory(prefix="covertype-bench-") as folder:
        workdir = Path(folder)
        ports = {name: free_port() for name in BODIES}
        processes = {
            OURS: bentoml_service(ports[OURS], workdir, env),
            BENTOML_ECHO: bentoml_echo_server(ports[BENTOML_ECHO], workdir),
            FASTAPI_ECHO: fastapi_echo_server(ports[FASTAPI_ECHO], workdir),
            MLFLOW: mlflow_model_server(
                ports[MLFLOW], workdir, f"models:/{registry.model_name}/{version}", env
            ),
        }
        servers = {name: (process, f"http://127.0.0.1:{ports[name]}") for name, process in processes.items()}
        console.print("starting the four servers, then measuring ...")
        results = measure(servers, records, args)
    console.print(table_of(results, registry.model_name, version, args))
    rows = {row["server"]: row for row in results}
    ours = rows[OURS]
    ratios = {
        "ours / BentoML echo p50 (target <= 1.3)": ours["p50_ms"] / rows[BENTOML_ECHO]["p50_ms"],
        "ours / mlflow p50": ours["p50_ms"] / rows[MLFLOW]["p50_ms"],
        "ours / mlflow records/s (target >= 3)": ours["records_per_s"] / rows[MLFLOW]["records_per_s"],
        "ours / BentoML echo records/s (target >= 0.8)": ours["records_per_s"]
        / rows[BENTOML_ECHO]["records_per_s"],
        "ours / BentoML echo server CPU per record": ours["cpu_ms_per_1000_records"]
        / rows[BENTOML_ECHO]["cpu_ms_per_1000_records"],
    }
    for label, ratio in ratios.items():
        console.print(f"{label}: x{ratio:.2f}")
    console.print(
        f"our service answered through {ours['prediction_path']}; "
        f"/explain p50 for one record {ours['explain_p50_ms']:.1f} ms"
    )
    path = save_result(
        args.result,
        {
            "model_version": str(version),
            "model_family": family,
            "prediction_path": ours["prediction_path"],
            "explain_p50_ms": ours["explain_p50_ms"],
            "load": f"{args.clients} clients x {args.batch} records; {args.requests} single-record requests",
            "servers": results,
        },
        this_command(),
        ratios=ratios,
    )
    console.print(f"written to {path}")


def table_of(results: list[dict], model_name: str, version: str, args: argparse.Namespace) -> Table:
    """Every server's figures with the floor (the echoes) beside ours, and each one's ratios to ours."""
    rows = {row["server"]: row for row in results}
    table = Table(
        title=f"{model_name} v{version}: {args.requests} sequential single-record requests, "
        f"then {args.clients} clients x {args.batch}-record requests"
    )
    for header in ("server", "p50 (ms)", "p95 (ms)", "p99 (ms)", "records/s", "CPU ms / 1k records",
                   "our p50 / its p50", "our records/s / its"):  # fmt: skip
        table.add_column(header, justify="right")
    ours = rows[OURS]
    for row in results:
        table.add_row(
            row["server"],
            f"{row['p50_ms']:.2f}",
            f"{row['p95_ms']:.2f}",
            f"{row['p99_ms']:.2f}",
            f"{row['records_per_s']:,.0f}",
            f"{row['cpu_ms_per_1000_records']:.1f}",
            f"{ours['p50_ms'] / row['p50_ms']:.2f}",
            f"{ours['records_per_s'] / row['records_per_s']:.2f}",
        )
    return table


if __name__ == "__main__":
    main()
