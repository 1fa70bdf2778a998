"""``covertype-data``: fetch the Covertype rows and write them in the batch API's 13-column form."""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path

from covertype.data.convert import one_hot_to_api
from covertype.data.source import RAW_DATA_DIR, load_covertype


def write_csv_atomically(frame, path: Path) -> None:
    """Write ``frame`` as CSV so that readers see either the old file or the complete new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", newline="") as out:
            frame.to_csv(out, index=False)
        Path(temporary).replace(path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--source",
        choices=["auto", "sample", "full"],
        default="auto",
        help="auto: the full UCI set when online, else the shipped sample",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RAW_DATA_DIR / "covertype.csv",
        help="13-column CSV to write, as the course batch API reads it",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    api_rows = one_hot_to_api(load_covertype(args.source))
    write_csv_atomically(api_rows, args.output)
    logging.info("Wrote %s rows in the batch API's form to %s", f"{len(api_rows):,}", args.output)


if __name__ == "__main__":
    main()
