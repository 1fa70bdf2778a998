"""``make demo``: the whole loop on a fresh machine, with no services installed.

Starts the batch API on a free port with a short rotation, then runs one cycle per batch, in this
process as ``kedro run`` would: the ``ingestion`` pipeline collects the batch, ``monitoring``
reports its drift against the champion's training rows, then ``feature_engineering`` and
``training`` rebuild the features over everything stored and train a challenger, which becomes
the champion only if it beats the current one. When the API says that all the data was
collected, it prints each cycle and the champion's test metrics.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import mlflow
import optuna
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from covertype.batch_api.rotation import GroupState
from covertype.config import Settings, load_settings
from covertype.data.schema import COVER_TYPE_NAMES
from covertype.paths import PROJECT_ROOT
from covertype.registry import ModelRegistry
from covertype.stack.processes import free_port
from covertype.stack.services import batch_api
from covertype.stack.serving import serve_champion_with_ui

BATCHES = 10
#: Every training run logs the model that serves after it, scored on its test split, under this prefix.
CHAMPION_METRICS = "champion.test_"


@dataclass(frozen=True)
class Cycle:
    """What one cycle did: the batch it collected, what training decided, the champion it left."""

    batch_number: int
    rows_received: int
    rows_quarantined: int
    decision: str
    champion_macro_f1: float
    seconds: float


def run_pipelines(pipelines: list[str], env: str, runtime_params: dict[str, object]) -> None:
    """One ``kedro run --pipeline ...``, as a fresh Kedro session."""
    with KedroSession.create(project_path=PROJECT_ROOT, env=env, runtime_params=runtime_params) as session:
        session.run(pipeline_names=pipelines)


def load_dataset(name: str, env: str):
    with KedroSession.create(project_path=PROJECT_ROOT, env=env) as session:
        return session.load_context().catalog.load(name)


@dataclass(frozen=True)
class TrainingStore:
    """Where the environment's training sessions log their runs and register the model."""

    registry: ModelRegistry
    experiment: str

    def latest_training_run(self) -> mlflow.entities.Run:
        """The run the last training session logged."""
        experiment = self.registry.client.get_experiment_by_name(self.experiment)
        return self.registry.client.search_runs(
            [experiment.experiment_id],
            filter_string="tags.promotion_decision != ''",
            order_by=["start_time DESC"],
            max_results=1,
        )[0]


def training_store(env: str, settings: Settings) -> TrainingStore:
    """The environment's store and experiment as its kedro-mlflow configuration names them."""
    with KedroSession.create(project_path=PROJECT_ROOT, env=env) as session:
        mlflow_config = session.load_context().mlflow
    server = mlflow_config.server
    registry = ModelRegistry.from_settings(settings, server.mlflow_tracking_uri, server.mlflow_registry_uri)
    return TrainingStore(registry=registry, experiment=mlflow_config.tracking.experiment.name)


def wait_for_next_batch(batch_api_url: str, group_number: int) -> None:
    """Sleep until our batch API moves the group on: its ``/health`` says when.

    The batch advances a window after the call that first served it, so a cycle shorter than the
    window that slept from its own start could call just before and draw the same batch again.
    """
    groups = httpx.get(f"{batch_api_url}/health", timeout=30).raise_for_status().json()["groups"]
    state = next(GroupState(**group) for group in groups if group["group_number"] == group_number)
    if not state.finished:
        time.sleep(state.seconds_to_next_batch + 0.1)


def run_cycles(
    batch_api_url: str, env: str, group_number: int, *, store: TrainingStore, console: Console
) -> list[Cycle]:
    """Ingest, then rebuild features and train, once per batch until the API has served them all."""
    params = {"batch_api_url": batch_api_url, "group_number": group_number}
    cycles: list[Cycle] = []
    columns = (
        TextColumn("[bold]Cycles"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("batch 1", total=BATCHES)
        while True:
            started = time.monotonic()
            # One session per cycle: see the kedro-mlflow note in conf/base/mlflow.yml.
            run_pipelines(["ingestion", "monitoring", "feature_engineering", "training"], env, params)
            summary = load_dataset("ingestion_summary", env)
            batch = summary["batch_number"]
            if batch is None:  # the API had finished before this run: nothing collected
                break
            run = store.latest_training_run()
            cycles.append(
                Cycle(
                    batch_number=batch,
                    rows_received=summary["rows_received"],
                    rows_quarantined=summary["rows_quarantined"],
                    decision=run.data.tags["promotion_decision"],
                    champion_macro_f1=run.data.metrics[CHAMPION_METRICS + "macro_f1"],
                    seconds=time.monotonic() - started,
                )
            )
            progress.update(task, completed=batch, description=f"batch {batch}: {cycles[-1].decision}")
            if summary["collection_finished"]:  # that was the last batch
                break
            wait_for_next_batch(batch_api_url, group_number)
    return cycles


def print_cycles(console: Console, env: str, cycles: list[Cycle], elapsed: float) -> None:
    raw = load_dataset("raw_covertype@table", env)
    stored = raw.groupby("batch_number").size()
    table = Table(title=f"One cycle per batch ({env} environment)")
    for header in (
        "batch",
        "rows received",
        "quarantined",
        "rows stored",
        "training",
        "champion test macro-F1",
        "seconds",
    ):
        table.add_column(header, justify="right")
    for cycle in cycles:
        table.add_row(
            str(cycle.batch_number),
            f"{cycle.rows_received:,}",
            f"{cycle.rows_quarantined:,}",
            f"{int(stored.get(cycle.batch_number, 0)):,}",
            cycle.decision,
            f"{cycle.champion_macro_f1:.4f}",
            f"{cycle.seconds:.1f}",
        )
    console.print(table)
    console.print(f"{len(cycles)} cycles in {elapsed:.1f} s; the raw store holds {len(raw):,} rows.")


def print_champion(console: Console, store: TrainingStore) -> None:
    """The champion's version, why it holds the alias, and its metrics on the final test split."""
    registry = store.registry
    version = registry.champion()
    last = store.latest_training_run()
    metrics = last.data.metrics
    table = Table(
        title=f"Champion: models:/{registry.describe(registry.champion_alias)} = version {version.version}"
    )
    table.add_column("metric on the final test split")
    table.add_column("value", justify="right")
    for name in ("accuracy", "macro_f1", "roc_auc_ovr"):
        table.add_row(f"test_{name}", f"{metrics[CHAMPION_METRICS + name]:.4f}")
    for label, species in COVER_TYPE_NAMES.items():
        table.add_row(f"F1 {label} {species}", f"{metrics[CHAMPION_METRICS + f'f1_class.{label}']:.4f}")
    console.print(table)
    console.print(f"Version {version.version} was promoted because {version.tags['promotion_reason']}.")
    console.print(f"Last decision: {last.data.tags['promotion_reason']}")
    console.print(f"Tracking store: {registry.tracking_uri}")


def bootstrap_quietly(log_path: Path, console: Console) -> None:
    """Bootstrap Kedro for a console report: log records and warnings go to ``log_path`` (named there).

    The console keeps the report (progress, tables); Kedro's, MLflow's and the libraries' INFO lines
    and warnings are still there to read in the file. kedro-mlflow sets its logger back to INFO in
    every session, so this swaps the root handlers rather than raising levels.
    """
    bootstrap_project(PROJECT_ROOT)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(log_path, mode="w", encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(to_file)
    for logger in [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]:
        # MLflow logs to stderr through a handler of its own; in this process it writes to the file too.
        consoles = [h for h in logger.handlers if type(h) is logging.StreamHandler]
        for handler in consoles:
            logger.removeHandler(handler)
        logger.propagate = logger.propagate or bool(consoles)
    logging.captureWarnings(True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    console.print(f"Kedro and MLflow logs: {log_path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="covertype-demo", description=__doc__)
    parser.add_argument("--env", default="local", help="Kedro environment (local: embedded stores)")
    parser.add_argument("--group-number", type=int, default=1)
    parser.add_argument(
        "--rotation-seconds",
        type=float,
        default=2.0,
        help="the batch API's min_update_seconds (the course uses 300)",
    )
    parser.add_argument(
        "--no-serve",
        dest="serve",
        action="store_false",
        help="end after training instead of serving the champion and the UI until Ctrl+C",
    )
    args = parser.parse_args(argv)
    console = Console()
    settings = load_settings()
    log_path = (settings.data_dir or PROJECT_ROOT / "data") / "08_reporting" / "demo.log"
    bootstrap_quietly(log_path, console)
    store = training_store(args.env, settings)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="covertype-demo-") as workdir:
        port = free_port()
        with batch_api(port, Path(workdir), args.rotation_seconds, rows_per_request="all", seed=42):
            url = f"http://127.0.0.1:{port}"
            console.print(f"Batch API running at {url} (a new batch every {args.rotation_seconds:g} s)")
            cycles = run_cycles(url, args.env, args.group_number, store=store, console=console)
    print_cycles(console, args.env, cycles, time.monotonic() - started)
    print_champion(console, store)
    if args.serve:
        serve_until_interrupted(console)


def serve_until_interrupted(console: Console) -> None:
    """Serve the champion with BentoML and the Streamlit app on it, until Ctrl+C or SIGTERM."""
    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    console.print("Starting the champion's BentoML service and the Streamlit app (about 30 s)...")
    with tempfile.TemporaryDirectory(prefix="covertype-serve-") as workdir:
        with serve_champion_with_ui(Path(workdir)) as urls:
            console.print(f"[bold]BentoML service:[/bold] {urls.service}  (POST /predict, /model_info)")
            console.print(f"[bold]Streamlit app:[/bold]   {urls.ui}")
            console.print("Press Ctrl+C to stop both.")
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
        console.print("Stopped the service and the app.")


if __name__ == "__main__":
    main()
