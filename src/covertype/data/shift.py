"""A documented shift of the real sample: the collection moves to one wilderness area.

For drift tests and demonstrations (docs/how-to/read-a-drift-report.md). ``one_area_from_batch``
orders the real rows so that the batch API (contiguous batches of a tenth of the rows each) serves a
shuffled mix of every area until ``first_shifted_batch``, then only the rows of ``area``: the
terrain (elevation, soils, distances) of one area is unlike the mix, so most fields drift. Nothing is
invented: every row is a real row, served once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: How many batches the batch API cuts its rows into (covertype.batch_api.rotation's default).
BATCHES = 10


def one_area_from_batch(
    rows: pd.DataFrame, area: str, first_shifted_batch: int, seed: int = 0, batches: int = BATCHES
) -> pd.DataFrame:
    """``rows`` (13 columns, as the batch API serves them) reordered into ``batches`` equal batches:
    before ``first_shifted_batch`` a shuffled mix of every area, from it on ``area``'s rows only.

    The batch is as large as the area's rows allow (at most a tenth of ``rows``); rows left over
    are not served.
    """
    shuffled = rows.sample(frac=1.0, random_state=np.random.default_rng(seed)).reset_index(drop=True)
    in_area = shuffled["Wilderness_Area"] == area
    normal_batches, shifted_batches = first_shifted_batch - 1, batches - first_shifted_batch + 1
    for batch_size in range(len(rows) // batches, 0, -1):
        mixed = shuffled.head(normal_batches * batch_size)
        remaining = shuffled.iloc[len(mixed) :][in_area.iloc[len(mixed) :]]
        if len(remaining) >= shifted_batches * batch_size:
            ordered = pd.concat([mixed, remaining.head(shifted_batches * batch_size)])
            return ordered.reset_index(drop=True)
    raise ValueError(f"no rows of the area {area!r} to shift to")
