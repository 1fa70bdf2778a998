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
