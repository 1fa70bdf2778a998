"""``covertype-batch-api``: serve Covertype in rotating batches, as the course API does.

Every option defaults to a variable of the project's settings (``COVERTYPE_API_<OPTION>``, see
``covertype.config`` and ``.env.example``) so containers and demos set it without changing the command.
``--source synthetic`` serves a SYNTHETIC resampling of the real sample up to the full set's size,
for benchmarks (``covertype.data.resample``); it says so in its greeting, ``/health`` and log.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd
import uvicorn
from kedro.config import OmegaConfigLoader

from covertype.batch_api.app import ServedData, create_app
from covertype.batch_api.rotation import BatchRotation, RotationSettings
from covertype.config import load_settings
from covertype.data.convert import one_hot_to_api
from covertype.data.resample import SYNTHETIC_LABEL, resample_training_split
from covertype.data.schema import API_COLUMNS
from covertype.data.source import FULL_DATASET, load_covertype
from covertype.first_run import PortInUse, ensure_port_free
from covertype.paths import PROJECT_ROOT
from covertype.settings import CONFIG_LOADER_ARGS

logger = logging.getLogger("covertype.batch_api")


def _rows_per_request(value: str) -> int | None:
    """``course`` (batch_size // 10, the default), ``all`` (whole batches) or a positive count."""
    if value == "course":
        return None
    if value == "all":
        return 0
    count = int(value)
    if count < 1:
        raise argparse.ArgumentTypeError("rows per request must be positive, 'course' or 'all'")
    return count


def feature_engineering_test_fraction() -> float:
    """The hash split's test share, as feature engineering reads it (conf/, base and local)."""
    parameters = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), **CONFIG_LOADER_ARGS)["parameters"]
    return float(parameters["feature_engineering"]["test_fraction"])


def load_served_data(data_path: Path | None, source: str, rows: int, seed: int | None) -> ServedData:
    """The 13-column string rows to serve and what they are: a CSV, the loader's rows or a resampling."""
    if data_path is not None:
        frame = pd.read_csv(data_path, dtype=str, keep_default_na=False)
        if tuple(frame.columns) != API_COLUMNS:
            raise SystemExit(f"{data_path}: expected the columns {list(API_COLUMNS)}")
        return ServedData(frame.to_numpy().tolist(), f"the rows of {data_path}")
    if source != "synthetic":
        frame = one_hot_to_api(load_covertype(source))
        kind = "the full UCI Covertype set" if len(frame) == FULL_DATASET.rows else "the shipped real sample"
        return ServedData(frame.to_numpy().tolist(), f"{kind} ({len(frame):,} real rows)")
    test_fraction = feature_engineering_test_fraction()
    sample = one_hot_to_api(load_covertype("sample"))
    frame = resample_training_split(sample, rows, test_fraction, seed or 0)
    description = (
        f"{SYNTHETIC_LABEL}: {len(frame):,} rows resampled (per class, integer jitter) from the "
        f"training side (hash split, test_fraction {test_fraction:g}) of the {len(sample):,}-row real "
        "sample; its test side is never served. See covertype.data.resample."
    )
    return ServedData(frame.to_numpy().tolist(), description, synthetic=True)


def build_parser() -> argparse.ArgumentParser:
    settings = load_settings()
    parser = argparse.ArgumentParser(prog="covertype-batch-api", description=__doc__)
    parser.add_argument("--host", default=settings.api_host)
    parser.add_argument("--port", type=int, default=settings.api_port)
    parser.add_argument(
        "--data",
        type=Path,
        default=settings.api_data,
        help="13-column CSV to serve (as written by covertype-data)",
    )
    parser.add_argument(
        "--source",
        choices=["sample", "full", "auto", "synthetic"],
        default=settings.api_source,
        help="rows to serve when --data is not given (synthetic: a resampling, for benchmarks)",
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=settings.api_rows,
        help="rows of --source synthetic (default: the full set's 581,012)",
    )
    parser.add_argument(
        "--state",
        type=Path,
        default=settings.api_state or PROJECT_ROOT / "data" / "batch_api" / "state.sqlite3",
        help="SQLite file keeping each group's batch across restarts",
    )
    parser.add_argument("--min-update-seconds", type=float, default=settings.batch_rotation_seconds)
    parser.add_argument(
        "--rows-per-request",
        type=_rows_per_request,
        default=_rows_per_request(settings.api_rows_per_request),
    )
    parser.add_argument(
        "--seed", type=int, default=settings.api_seed, help="also the synthetic resampling's (default 0)"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:  # before loading the rows (seconds for the synthetic source), not after
        ensure_port_free(args.host, args.port, "--port N (or COVERTYPE_API_PORT)")
    except PortInUse as taken:
        sys.exit(f"Error: {taken}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    served = load_served_data(args.data, args.source, args.rows, args.seed)
    (logger.warning if served.synthetic else logger.info)("Serving %s", served.description)
    settings = RotationSettings(
        min_update_seconds=args.min_update_seconds,
        rows_per_request=args.rows_per_request,
        seed=args.seed,
    )
    rotation = BatchRotation(served.rows, args.state, settings)
    uvicorn.run(create_app(rotation, served=served), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
