"""Where the Covertype rows come from: the full UCI set when it can be had, else the shipped sample.

The full set (581,012 rows) is downloaded once, verified against its published SHA-256 and cached;
offline, the loader falls back to the real 15,000-row sample carried in the repository.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx
import pandas as pd
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from covertype.data.schema import ONE_HOT_COLUMNS
from covertype.paths import PROJECT_ROOT

logger = logging.getLogger(__name__)

RAW_DATA_DIR = PROJECT_ROOT / "data" / "01_raw"

Source = Literal["auto", "sample", "full"]


@dataclass(frozen=True)
class CovertypeFile:
    """A published Covertype file: where it is, its checksum and its row count."""

    url: str
    filename: str
    sha256: str
    rows: int


FULL_DATASET = CovertypeFile(
    url="https://archive.ics.uci.edu/ml/machine-learning-databases/covtype/covtype.data.gz",
    filename="covtype.data.gz",
    sha256="614360d0257557dd1792834a85a1cdebfadc3c4f30b011d56afee7ffb5b15771",
    rows=581_012,
)
SAMPLE_DATASET = CovertypeFile(
    url="",
    filename="covtype-sample-15k.csv.gz",
    sha256="19a5e0706b0b68a721c238e0c2cc472d35ff23ef3317f2f08b2fd05f2edc9a00",
    rows=15_000,
)


class ChecksumError(ValueError):
    """A file's content is not the one that was published."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(remote: CovertypeFile, cache_dir: Path, timeout: float = 30.0) -> Path:
    """Download ``remote`` into ``cache_dir`` with a progress bar, verify it, then move it into place.

    The file appears under its final name only once complete and verified, so an interrupted or
    corrupted download never poisons the cache.
    """
    target = cache_dir / remote.filename
    if target.exists() and sha256_of(target) == remote.sha256:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    handle, partial_name = tempfile.mkstemp(dir=cache_dir, prefix=f".{remote.filename}.", suffix=".part")
    partial = Path(partial_name)
    digest = hashlib.sha256()
    try:
        with (
            os.fdopen(handle, "wb") as out,
            httpx.stream("GET", remote.url, timeout=timeout, follow_redirects=True) as response,
        ):
            response.raise_for_status()
            total = int(response.headers.get("Content-Length", 0)) or None
            columns = (
                *Progress.get_default_columns()[:1],
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
            )
            with Progress(*columns, transient=True) as progress:
                task = progress.add_task(f"Downloading {remote.filename}", total=total)
                for chunk in response.iter_bytes(1 << 16):
                    out.write(chunk)
                    digest.update(chunk)
                    progress.update(task, advance=len(chunk))
        if digest.hexdigest() != remote.sha256:
            raise ChecksumError(
                f"{remote.url}: sha256 {digest.hexdigest()} differs from the published {remote.sha256}"
            )
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def read_one_hot_csv(path: Path) -> pd.DataFrame:
    """Read a 55-column Covertype CSV (gzip or plain, with or without UCI's missing header)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as handle:
        has_header = handle.readline().startswith(ONE_HOT_COLUMNS[0])
    frame = pd.read_csv(path, header=0 if has_header else None, dtype="int64")
    if frame.shape[1] != len(ONE_HOT_COLUMNS):
        raise ValueError(f"{path}: expected {len(ONE_HOT_COLUMNS)} columns, found {frame.shape[1]}")
    frame.columns = list(ONE_HOT_COLUMNS)
    return frame


def _verified(path: Path, remote: CovertypeFile) -> pd.DataFrame:
    actual = sha256_of(path)
    if actual != remote.sha256:
        raise ChecksumError(f"{path}: sha256 {actual} differs from the published {remote.sha256}")
    frame = read_one_hot_csv(path)
    if len(frame) != remote.rows:
        raise ValueError(f"{path}: expected {remote.rows} rows, found {len(frame)}")
    return frame


def load_covertype(
    source: Source = "auto",
    data_dir: Path = RAW_DATA_DIR,
    full: CovertypeFile = FULL_DATASET,
    sample: CovertypeFile = SAMPLE_DATASET,
) -> pd.DataFrame:
    """Load the Covertype rows in the 55-column form.

    ``sample``: the shipped 15,000-row sample. ``full``: the full set, downloaded and cached on first
    use; fails without internet. ``auto``: the full set if it can be had, else the sample, saying so
    in one log line.
    """
    if source == "sample":
        return _verified(data_dir / sample.filename, sample)
    try:
        return _verified(download(full, data_dir), full)
    except (httpx.HTTPError, OSError, ValueError) as error:
        if source == "full":
            raise
        logger.warning(
            "Full Covertype set unavailable (%s: %s); using the shipped %s-row sample %s",
            type(error).__name__,
            error,
            f"{sample.rows:,}",
            sample.filename,
        )
        return _verified(data_dir / sample.filename, sample)
