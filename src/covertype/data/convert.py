"""Conversion between the 55-column one-hot form and the batch API's 13-column string form."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from covertype.data.schema import (
    API_COLUMNS,
    NUMERIC_COLUMNS,
    ONE_HOT_COLUMNS,
    ONE_HOT_SOIL_COLUMNS,
    ONE_HOT_WILDERNESS_COLUMNS,
    SOIL_TYPES,
    TARGET_COLUMN,
    WILDERNESS_AREAS,
)


def _decode_one_hot(block: pd.DataFrame, labels: tuple[str, ...]) -> np.ndarray:
    """Return the label of the single set column of each row; refuse rows with zero or several set."""
    values = block.to_numpy()
    set_per_row = values.sum(axis=1)
    if not (set_per_row == 1).all():
        bad = int(np.flatnonzero(set_per_row != 1)[0])
        raise ValueError(
            f"row {bad}: expected exactly one of {list(block.columns)} set, got {set_per_row[bad]}"
        )
    return np.asarray(labels, dtype=object)[values.argmax(axis=1)]


def one_hot_to_api(frame: pd.DataFrame) -> pd.DataFrame:
    """55-column one-hot rows -> the 13 string columns the batch API serves."""
    missing = [column for column in ONE_HOT_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"missing one-hot columns: {missing}")
    api = frame.loc[:, list(NUMERIC_COLUMNS)].astype("int64").astype(str)
    api["Wilderness_Area"] = _decode_one_hot(frame.loc[:, list(ONE_HOT_WILDERNESS_COLUMNS)], WILDERNESS_AREAS)
    api["Soil_Type"] = _decode_one_hot(frame.loc[:, list(ONE_HOT_SOIL_COLUMNS)], SOIL_TYPES)
    api[TARGET_COLUMN] = frame[TARGET_COLUMN].astype("int64").astype(str)
    return api.loc[:, list(API_COLUMNS)].astype(str).reset_index(drop=True)


def api_to_one_hot(frame: pd.DataFrame) -> pd.DataFrame:
    """13-column API rows (strings or typed) -> the 55 integer columns of the one-hot form."""
    for name, codes in (("Wilderness_Area", WILDERNESS_AREAS), ("Soil_Type", SOIL_TYPES)):
        unknown = ~frame[name].isin(codes)
        if unknown.any():
            raise ValueError(f"unknown {name} codes: {sorted(set(frame[name][unknown].astype(str)))}")
    one_hot = frame.loc[:, list(NUMERIC_COLUMNS)].astype("int64")
    wilderness = pd.Categorical(frame["Wilderness_Area"], categories=WILDERNESS_AREAS)
    soil = pd.Categorical(frame["Soil_Type"], categories=SOIL_TYPES)
    one_hot = one_hot.join(
        pd.DataFrame(
            np.eye(len(WILDERNESS_AREAS), dtype="int64")[wilderness.codes],
            columns=ONE_HOT_WILDERNESS_COLUMNS,
            index=frame.index,
        )
    ).join(
        pd.DataFrame(
            np.eye(len(SOIL_TYPES), dtype="int64")[soil.codes],
            columns=ONE_HOT_SOIL_COLUMNS,
            index=frame.index,
        )
    )
    one_hot[TARGET_COLUMN] = frame[TARGET_COLUMN].astype("int64")
    return one_hot.loc[:, list(ONE_HOT_COLUMNS)]


def _as_integers(values: pd.Series) -> pd.Series:
    """Integers where the text is a whole number, <NA> elsewhere (validation names those fields)."""
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers.where(numbers % 1 == 0).astype("Int64")


def api_records_to_frame(records: list[list[str]]) -> pd.DataFrame:
    """The batch API's rows (lists of 13 strings) -> a typed frame: integers and string categories.

    A value that is not a whole number becomes <NA> and a row with the wrong number of fields is
    padded or cut, so that validation can report each problem; ``raw_record`` keeps each row
    exactly as it was served.
    """
    fields = len(API_COLUMNS)
    padded = [
        ([*record, *[None] * fields][:fields] if isinstance(record, list) else [None] * fields)
        for record in records
    ]
    frame = pd.DataFrame(padded, columns=list(API_COLUMNS), dtype=object)
    for column in (*NUMERIC_COLUMNS, TARGET_COLUMN):
        frame[column] = _as_integers(frame[column])
    for column in ("Wilderness_Area", "Soil_Type"):
        frame[column] = frame[column].astype("string")
    frame["raw_record"] = pd.Series([json.dumps(record) for record in records], dtype="string")
    return frame
