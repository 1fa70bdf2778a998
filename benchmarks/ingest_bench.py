"""``make bench-ingest``: the ingestion write path against ``DataFrame.to_sql``, on a real MariaDB.

``python benchmarks/ingest_bench.py --harvest`` measures the harvest instead (see ``harvest_windows``).

The rows are SYNTHETIC: a resampling of the shipped 15,000-row sample to one full course batch
(58,101 rows): rows drawn with replacement within each Cover_Type (class proportions kept), then
integer jitter on Elevation (±30 m) and the three distances (±15 m), clipped to the record
contract's bounds, duplicates redrawn. They go through the ingestion nodes, so each side writes the
exact frame a run stores. Each round uses a fresh database and writes, in turn:

- ``to_sql``: ``DataFrame.to_sql`` with its default method, into a new table (the issue's baseline);
- ``SQLAppendDataset.save`` into the raw table (unique key, counts of repeats): LOAD DATA LOCAL
  INFILE into a staging table and one INSERT ... SELECT, then the same batch again (idempotent:
  nothing stored).

Figures are ratios within a round (the machine is shared), and the median over the rounds; the
client's CPU seconds show how much of each write is this process rather than the server.
Results go to ``benchmarks/results/ingest.json`` (``harvest.json`` with ``--harvest``).
MariaDB: ``COVERTYPE_BENCH_MYSQL_URL``
(a server URL without a database, default ``mysql+pymysql://root:@127.0.0.1:3306``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from covertype.benchmark_results import save_result, this_command
from covertype.data.convert import api_records_to_frame, one_hot_to_api
from covertype.data.schema import RECORD_CONTRACT, TARGET_COLUMN
from covertype.data.source import load_covertype
from covertype.datasets import BatchAPIDataset, SQLAppendDataset
from covertype.paths import PROJECT_ROOT
from covertype.pipelines.ingestion.nodes import flag_invalid_rows, harvest_batch, select_valid_rows
from covertype.stack.processes import free_port
from covertype.stack.services import batch_api, ensure_local_mariadb

BATCH_ROWS = 58_101
#: Issue 12's target for the write path against ``DataFrame.to_sql``.
TARGET_SPEEDUP = 5.0
JITTER = {
    "Elevation": 30,
    "Horizontal_Distance_To_Hydrology": 15,
    "Horizontal_Distance_To_Roadways": 15,
    "Horizontal_Distance_To_Fire_Points": 15,
}


def synthetic_batch(rows: int, seed: int) -> pd.DataFrame:
    """SYNTHETIC rows in the batch API's string form: the sample resampled per class, with jitter."""
    sample = one_hot_to_api(load_covertype("sample"))
    rng = np.random.default_rng(seed)
    bounds = {rule.name: rule.bounds for rule in RECORD_CONTRACT}
    shares = sample[TARGET_COLUMN].value_counts(normalize=True)
    drawn = pd.DataFrame(columns=sample.columns)
    while len(drawn) < rows:
        missing = rows - len(drawn)
        counts = (shares * missing).round().astype(int).clip(lower=1)
        picked = pd.concat(
            [
                sample[sample[TARGET_COLUMN] == label].sample(count, replace=True, random_state=rng)
                for label, count in counts.items()
            ]
        )
        for column, width in JITTER.items():
            low, high = bounds[column]
            jittered = picked[column].astype(int) + rng.integers(-width, width + 1, len(picked))
            picked[column] = jittered.clip(low, high).astype(str)
        drawn = pd.concat([drawn, picked]).drop_duplicates()
    return drawn.sample(frac=1, random_state=rng).head(rows).reset_index(drop=True)


def rows_to_store(rows: pd.DataFrame) -> pd.DataFrame:
    batch = api_records_to_frame(rows.to_numpy().tolist()).assign(
        group_number=1, batch_number=1, collected_at=pd.Timestamp.now(tz="UTC")
    )
    return select_valid_rows(flag_invalid_rows(batch))


def timed(action) -> tuple[float, float]:
    """Wall-clock seconds, and this process's CPU seconds (the client's share of the work)."""
    started, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - started, time.process_time() - cpu


def one_round(server_url: str, frame: pd.DataFrame) -> dict[str, float]:
    database = f"covertype_bench_{uuid.uuid4().hex[:10]}"
    server = sa.create_engine(server_url)
    with server.begin() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {database}")
    try:
        engine = sa.create_engine(f"{server_url}/{database}")
        raw = SQLAppendDataset(
            table_name="raw_covertype",
            credentials={"con": f"{server_url}/{database}"},
            count_repeats_by="batch_number",
        )
        to_sql, to_sql_cpu = timed(lambda: frame.to_sql("to_sql_baseline", engine, index=False))
        save, save_cpu = timed(lambda: raw.save(frame))
        save_again, _ = timed(lambda: raw.save(frame))
        with engine.connect() as connection:
            stored = connection.exec_driver_sql("SELECT COUNT(*) FROM raw_covertype").scalar_one()
        assert stored == len(frame), f"stored {stored} of {len(frame)}"
        engine.dispose()
        return {
            "to_sql_s": to_sql,
            "save_s": save,
            "save_again_s": save_again,
            "to_sql_client_cpu_s": to_sql_cpu,
            "save_client_cpu_s": save_cpu,
        }
    finally:
        with server.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {database}")
        server.dispose()


def harvest_windows(rotation_seconds: float, pause_seconds: float) -> dict[str, object]:
    """Our API at the course's settings on the real sample: 1,500-row batches, 150 rows per call.

    The ten windows are compressed to ``rotation_seconds`` (the harvest's window too, with a 1 s
    margin) and the pause shortened to ``pause_seconds``; every other harvest parameter is the
    default of parameters_ingestion.yml. Coverage is exact: each batch's rows are known.
    """
    rows = one_hot_to_api(load_covertype("sample")).to_numpy().tolist()
    harvest = {
        "enabled": True,
        "pause_seconds": pause_seconds,
        "window_seconds": rotation_seconds,
        "closing_margin_seconds": 1.0,
    }
    port, windows = free_port(), []
    with (
        tempfile.TemporaryDirectory() as workdir,
        batch_api(port, Path(workdir), rotation_seconds, rows_per_request="course", seed=7),
    ):
        dataset = BatchAPIDataset(url=f"http://127.0.0.1:{port}", group_number=1)
        while True:
            started = time.monotonic()
            batch, report = harvest_batch(dataset.load(), harvest)
            if report["collection_finished"]:
                break
            number = int(batch["batch_number"].iloc[0])
            truth = {json.dumps(row) for row in rows[(number - 1) * 1_500 : number * 1_500]}
            window = {
                "batch": number,
                "calls": report["calls"],
                "distinct_rows": len(batch),
                "coverage": len(set(batch["raw_record"]) & truth) / len(truth),
                "estimated_coverage": report["estimated_coverage"],
                "stopped_because": report["stopped_because"],
            }
            windows.append(window)
            print(
                f"batch {number:>2}: {window['calls']:>2} calls, {window['distinct_rows']:,} distinct, "
                f"coverage {window['coverage']:.1%} (estimated {window['estimated_coverage']:.1%}), "
                f"stopped: {window['stopped_because']}"
            )
            time.sleep(max(0.0, rotation_seconds + 0.2 - (time.monotonic() - started)))  # the next window
    return {
        "data": "the shipped 15,000-row sample (real rows), our batch API with rows_per_request=course",
        "rotation_seconds": rotation_seconds,
        "harvest": harvest,
        "windows": windows,
        "min_coverage": min(window["coverage"] for window in windows),
        "max_calls": max(window["calls"] for window in windows),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=BATCH_ROWS)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--harvest", action="store_true", help="measure the harvest, not the write path")
    parser.add_argument("--rotation-seconds", type=float, default=8.0)
    parser.add_argument("--pause-seconds", type=float, default=0.05)
    args = parser.parse_args(argv)
    if args.harvest:
        summary = harvest_windows(args.rotation_seconds, args.pause_seconds)
        print(f"lowest coverage {summary['min_coverage']:.1%}, most calls in a window {summary['max_calls']}")
        write("harvest", summary, {"lowest coverage of a window's distinct rows": summary["min_coverage"]})
        return
    server_url = os.environ.get("COVERTYPE_BENCH_MYSQL_URL", "mysql+pymysql://root:@127.0.0.1:3306")
    if "COVERTYPE_BENCH_MYSQL_URL" not in os.environ:
        ensure_local_mariadb()
    frame = rows_to_store(synthetic_batch(args.rows, args.seed))
    print(f"SYNTHETIC batch: {len(frame):,} rows resampled from the 15,000-row sample (seed {args.seed})")
    rounds = []
    for number in range(1, args.rounds + 1):
        result = one_round(server_url, frame)
        result["speedup"] = result["to_sql_s"] / result["save_s"]
        rounds.append(result)
        print(
            f"round {number}: to_sql {len(frame) / result['to_sql_s']:>9,.0f} rows/s | "
            f"SQLAppendDataset {len(frame) / result['save_s']:>9,.0f} rows/s | "
            f"speedup {result['speedup']:.2f}x | same batch again {result['save_again_s']:.2f} s | "
            f"client CPU {result['to_sql_client_cpu_s']:.2f} s vs {result['save_client_cpu_s']:.2f} s"
        )
    summary = {
        "data": "SYNTHETIC: the shipped sample resampled per class with integer jitter (see the script)",
        "rows": len(frame),
        "server": server_url.rsplit("@", 1)[-1],
        "rounds": rounds,
        "median_speedup": statistics.median(result["speedup"] for result in rounds),
    }
    verdict = "met" if summary["median_speedup"] >= TARGET_SPEEDUP else "not met"
    print(
        f"median speedup over to_sql: {summary['median_speedup']:.2f}x "
        f"(target {TARGET_SPEEDUP:g}x: {verdict})"
    )
    write("ingest", summary, {"median speedup: SQLAppendDataset / to_sql": summary["median_speedup"]})


def write(name: str, summary: dict[str, Any], ratios: dict[str, float]) -> None:
    """The result as data (benchmarks/results/<name>.json), which the docs render."""
    output = save_result(name, summary, this_command(), ratios=ratios)
    print(f"written to {output.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
