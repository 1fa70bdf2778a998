"""``covertype-batch-api``: serve Covertype in rotating batches, as the course API does.

Every option has an environment variable (``COVERTYPE_API_<OPTION>``) so containers and demos set
it without changing the command.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import pandas as pd
import uvicorn

from covertype.batch_api.app import create_app
from covertype.batch_api.rotation import BatchRotation, RotationSettings
from covertype.data.convert import one_hot_to_api
from covertype.data.schema import API_COLUMNS
from covertype.data.source import load_covertype
from covertype.paths import PROJECT_ROOT


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"COVERTYPE_API_{name}", default)


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


def load_api_rows(data_path: Path | None, source: str) -> list[list[str]]:
    """The 13-column string rows to serve: a CSV as the course API reads it, or the loader's rows."""
    if data_path is not None:
        frame = pd.read_csv(data_path, dtype=str, keep_default_na=False)
        if tuple(frame.columns) != API_COLUMNS:
            raise SystemExit(f"{data_path}: expected the columns {list(API_COLUMNS)}")
    else:
        frame = one_hot_to_api(load_covertype(source))
    return frame.to_numpy().tolist()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="covertype-batch-api", description=__doc__)
    parser.add_argument("--host", default=_env("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(_env("PORT", "8000")))
    parser.add_argument(
        "--data",
        type=Path,
        default=_env("DATA"),
        help="13-column CSV to serve (as written by covertype-data)",
    )
    parser.add_argument(
        "--source",
        choices=["sample", "full", "auto"],
        default=_env("SOURCE", "sample"),
        help="rows to serve when --data is not given",
    )
    parser.add_argument(
        "--state",
        type=Path,
        default=Path(_env("STATE", str(PROJECT_ROOT / "data" / "batch_api" / "state.sqlite3"))),
        help="SQLite file keeping each group's batch across restarts",
    )
    parser.add_argument("--min-update-seconds", type=float, default=float(_env("MIN_UPDATE_SECONDS", "300")))
    parser.add_argument(
        "--rows-per-request",
        type=_rows_per_request,
        default=_rows_per_request(_env("ROWS_PER_REQUEST", "course")),
    )
    parser.add_argument("--seed", type=int, default=_env("SEED"))
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = RotationSettings(
        min_update_seconds=args.min_update_seconds,
        rows_per_request=args.rows_per_request,
        seed=args.seed,
    )
    rotation = BatchRotation(load_api_rows(args.data, args.source), args.state, settings)
    uvicorn.run(create_app(rotation), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
