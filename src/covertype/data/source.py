"""Where the Covertype rows come from: the full UCI set when it can be had, else the shipped sample.

The full set (581,012 rows) is downloaded once, verified against its published SHA-256 and cached;
offline, the loader falls back to the real 15,000-row sample carried in the repository.
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
import pooch

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
    """A shipped file's content is not the one that was published."""


def download(remote: CovertypeFile, cache_dir: Path) -> Path:
    """``remote`` in ``cache_dir``, downloaded with a progress bar unless a verified copy is there.

    pooch writes to a temporary file and moves it into place only once its SHA-256 matches
    (else ``ValueError``), so an interrupted or corrupted download never poisons the cache.
    """
    return Path(
        pooch.retrieve(
            remote.url,
            known_hash=f"sha256:{remote.sha256}",
            fname=remote.filename,
            path=cache_dir,
            progressbar=True,
        )
    )


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


def _with_published_rows(path: Path, remote: CovertypeFile) -> pd.DataFrame:
    frame = read_one_hot_csv(path)
    if len(frame) != remote.rows:
        raise ValueError(f"{path}: expected {remote.rows} rows, found {len(frame)}")
    return frame


def _shipped_sample(data_dir: Path, sample: CovertypeFile) -> pd.DataFrame:
    path = data_dir / sample.filename
    actual = pooch.file_hash(str(path))
    if actual != sample.sha256:
        raise ChecksumError(f"{path}: sha256 {actual} differs from the published {sample.sha256}")
    return _with_published_rows(path, sample)


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
        return _shipped_sample(data_dir, sample)
    try:
        return _with_published_rows(download(full, data_dir), full)
    except (OSError, ValueError) as error:  # requests' errors are OSErrors; a wrong checksum, a ValueError
        if source == "full":
            raise
        logger.warning(
            "Full Covertype set unavailable (%s: %s); using the shipped %s-row sample %s",
            type(error).__name__,
            error,
            f"{sample.rows:,}",
            sample.filename,
        )
        return _shipped_sample(data_dir, sample)
