"""Validated records in the two forms a model takes: the typed frame it was trained on, or its features.

The frame goes through the model's own pipeline (its pickled feature step); the feature matrix is
computed straight from the records in NumPy by ``covertype.features.feature_matrix``, the code the
model's feature step runs, for the engine (covertype.serving.engine) and the explanations.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter

import numpy as np
import pandas as pd

from covertype.data.schema import FEATURE_COLUMNS, NUMERIC_COLUMNS, SOIL_TYPES, WILDERNESS_AREAS
from covertype.features import feature_matrix
from covertype.serving.schema import CovertypeRecord

_numbers_of = attrgetter(*NUMERIC_COLUMNS)
_SOIL_POSITIONS = {code: position for position, code in enumerate(SOIL_TYPES)}
_WILDERNESS_POSITIONS = {name: position for position, name in enumerate(WILDERNESS_AREAS)}


def records_to_frame(records: Sequence[CovertypeRecord]) -> pd.DataFrame:
    """Validated records -> the frame the model was trained on (Int64 numbers, string codes)."""
    return pd.DataFrame(
        {
            name: pd.array(
                [getattr(record, name) for record in records],
                dtype="Int64" if name in NUMERIC_COLUMNS else "string",
            )
            for name in FEATURE_COLUMNS
        }
    )


def records_to_features(records: Sequence[CovertypeRecord]) -> np.ndarray:
    """The model's feature matrix of validated records, without pandas (~30 µs for one record)."""
    numbers = np.array([_numbers_of(record) for record in records], dtype=np.float64).reshape(
        len(records), len(NUMERIC_COLUMNS)
    )
    soil = np.array([_SOIL_POSITIONS.get(record.Soil_Type, -1) for record in records], dtype=np.intp)
    wilderness = np.array(
        [_WILDERNESS_POSITIONS.get(record.Wilderness_Area, -1) for record in records], dtype=np.intp
    )
    columns = {name: numbers[:, index] for index, name in enumerate(NUMERIC_COLUMNS)}
    return feature_matrix(columns, soil, wilderness)
