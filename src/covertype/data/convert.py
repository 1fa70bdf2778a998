"""Conversion between the 55-column one-hot form and the batch API's 13-column string form."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

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


#: Text that is certainly a 64-bit integer: a sign and at most 18 digits (the fast, common path).
_SHORT_INTEGER_TEXT = r"[+-]?\d{1,18}"
INT64_BOUNDS = (-(2**63), 2**63 - 1)


class NotAnInteger(ValueError):
    """A served value that no 64-bit integer field can hold; the message says why (for quarantine)."""


def to_int64(value: object) -> int:
    """The whole number a served value holds: a JSON integer, or text such as "2596", "2596.0", "1e3".

    Raises NotAnInteger for a missing or empty value, a boolean, a fraction ("1.5"), text that is
    no number, or a whole number beyond int64 ("1e19").
    """
    if value is None or value == "":
        raise NotAnInteger("missing")
    if isinstance(value, bool):
        raise NotAnInteger(f"{json.dumps(value)} is a boolean, not a number")
    if not isinstance(value, int | float | str):
        raise NotAnInteger(f"{json.dumps(value)} is not a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise NotAnInteger(f"{json.dumps(value)} is not a number") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise NotAnInteger(f"{json.dumps(value)} is not a whole number")
    if not INT64_BOUNDS[0] <= number <= INT64_BOUNDS[1]:
        raise NotAnInteger(f"{json.dumps(value)} is too big for a 64-bit integer")
    return int(number)


def _int64_or_none(value: object) -> int | None:
    try:
        return to_int64(value)
    except NotAnInteger:
        return None


def _as_integers(values: pd.Series) -> pd.Series:
    """Integers where ``to_int64`` reads one, <NA> elsewhere (validation names those fields and why).

    Short digit strings, nearly every value served, are converted in one vectorised step; the rest
    go through ``to_int64`` one by one.
    """
    text = values.astype("string")
    is_short_integer = text.str.fullmatch(_SHORT_INTEGER_TEXT).fillna(False).astype(bool)
    integers = pd.Series(pd.NA, index=values.index, dtype="Int64")
    integers[is_short_integer] = pd.to_numeric(text[is_short_integer]).astype("Int64")
    others = ~is_short_integer & values.notna()
    if others.any():
        integers[others] = values[others].map(_int64_or_none).astype("Int64")
    return integers


def api_records_to_frame(records: list[list[str]]) -> pd.DataFrame:
    """The batch API's rows (lists of 13 strings) -> a typed frame: integers and string categories.

    A value that ``to_int64`` cannot read becomes <NA> and a row with the wrong number of fields is
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
