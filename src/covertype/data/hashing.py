"""Stable content hashes of rows: the same values give the same key on every machine and version."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pandas as pd

_SEPARATOR = "\x1f"


def row_hashes(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """SHA-256 (hex) of each row's values in ``columns``, joined as text."""
    return pd.Series(
        [
            hashlib.sha256(_SEPARATOR.join(map(str, values)).encode()).hexdigest()
            for values in frame.loc[:, list(columns)].itertuples(index=False, name=None)
        ],
        index=frame.index,
        dtype="string",
    )


def hash_positions(hashes: pd.Series) -> pd.Series:
    """Where each hash falls in [0, 1), from its first 8 hex digits: the hash split's coordinate."""
    return hashes.str[:8].map(lambda prefix: int(prefix, 16)).astype("int64") / 16**8


def in_test_split(frame: pd.DataFrame, columns: Sequence[str], test_fraction: float) -> pd.Series:
    """Whether each row belongs to the test split: the hash of its ``columns`` falls below the fraction."""
    return hash_positions(row_hashes(frame, columns)) < test_fraction
