"""``make demo``: the main job on a fresh machine, with no services installed.

Starts the batch API on a free port with a short rotation, then runs the Kedro ingestion pipeline
once per batch (in this process, as ``kedro run --pipeline ingestion`` would) until the API says
that all the data was collected, and prints what was stored per batch.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from covertype.stack.processes import free_port
from covertype.stack.services import batch_api

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BATCHES = 10


def run_pipeline(pipeline: str, env: str, runtime_params: dict[str, object]) -> None:
    """One ``kedro run --pipeline <pipeline>``, as a fresh Kedro session."""
    with KedroSession.create(project_path=PROJECT_ROOT, env=env, runtime_params=runtime_params) as session:
        session.run(pipeline_names=[pipeline])


def load_dataset(name: str, env: str):
    with KedroSession.create(project_path=PROJECT_ROOT, env=env) as session:
        return session.load_context().catalog.load(name)


def collect_all_batches(
    batch_api_url: str, env: str, group_number: int, window: float, console: Console
) -> list[dict]:
    """Run ingestion once per rotation window until the API reports that everything was collected."""
    params = {"batch_api_url": batch_api_url, "group_number": group_number}
    summaries: list[dict] = []
    columns = (
        TextColumn("[bold]Collecting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("batches", total=BATCHES)
        while True:
            run_pipeline("ingestion", env, params)
            summary = load_dataset("ingestion_summary", env)
            if summary["collection_finished"]:
                break
            summaries.append(summary)
            stored = sum(s["rows_valid"] for s in summaries)
            progress.update(
                task,
                completed=summary["batch_number"],
                description=f"batch {summary['batch_number']}/{BATCHES}, {stored:,} rows received",
            )
            # The batch advances `window` seconds after it was first served, which was at or before this run.
            time.sleep(window)
    return summaries


def print_summary(console: Console, env: str, summaries: list[dict], elapsed: float) -> None:
    raw = load_dataset("raw_covertype@table", env)
    table = Table(title=f"Raw store after collection ({env} environment)")
    for header in ("batch", "rows received", "quarantined", "rows stored (all runs)"):
        table.add_column(header, justify="right")
    stored = raw.groupby("batch_number").size()
    for summary in summaries:
        batch = summary["batch_number"]
        table.add_row(
            str(batch),
            f"{summary['rows_received']:,}",
            f"{summary['rows_quarantined']:,}",
            f"{int(stored.get(batch, 0)):,}",
        )
    table.add_row(
        "total",
        f"{sum(s['rows_received'] for s in summaries):,}",
        f"{sum(s['rows_quarantined'] for s in summaries):,}",
        f"{len(raw):,}",
        style="bold",
    )
    console.print(table)
    console.print(f"Collected {len(summaries)} batches in {elapsed:.1f} s.")


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
    args = parser.parse_args(argv)
    console = Console()
    bootstrap_project(PROJECT_ROOT)
    logging.getLogger("kedro").setLevel(logging.WARNING)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="covertype-demo-") as workdir:
        port = free_port()
        with batch_api(port, Path(workdir), args.rotation_seconds, rows_per_request="all", seed=42):
            url = f"http://127.0.0.1:{port}"
            console.print(f"Batch API running at {url} (a new batch every {args.rotation_seconds:g} s)")
            summaries = collect_all_batches(url, args.env, args.group_number, args.rotation_seconds, console)
    print_summary(console, args.env, summaries, time.monotonic() - started)


if __name__ == "__main__":
    main()
