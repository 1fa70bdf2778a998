"""Validation and shaping of one collected batch; the catalog does all the I/O."""

from __future__ import annotations

import json

import pandas as pd

from covertype.data.convert import NotAnInteger, to_int64
from covertype.data.hashing import row_hashes
from covertype.data.schema import API_COLUMNS, RECORD_CONTRACT, RecordContract

BATCH_COLUMNS = ("group_number", "batch_number", "collected_at")


def _integer_problem(record: object, position: int) -> str:
    """Why the served value at ``position`` is no 64-bit integer ("" if it is one)."""
    value = record[position] if isinstance(record, list) and position < len(record) else None
    try:
        to_int64(value)
    except NotAnInteger as problem:
        return str(problem)
    return ""


def _problems(batch: pd.DataFrame, contract: RecordContract) -> pd.Series:
    """For each row, the reasons it is invalid joined by '; ' (empty when it is valid).

    The field count comes first, then the numbers' problems, then the codes', each in field order.
    A number that could not be read names the value as served and why (missing, a boolean, a
    fraction, too big for int64).
    """
    records = pd.Series([json.loads(raw) for raw in batch["raw_record"]], index=batch.index, dtype=object)
    field_counts = records.map(lambda record: len(record) if isinstance(record, list) else 0)
    checks = [
        (f"expected {len(contract)} fields, got " + field_counts.astype(str)).where(
            field_counts != len(contract), ""
        )
    ]
    for position, rule in enumerate(contract):
        if rule.bounds is None:
            continue
        low, high = rule.bounds
        values = batch[rule.name]
        unread = {
            index: f"{rule.name}: {_integer_problem(records[index], position)}"
            for index in batch.index[values.isna()]
        }
        checks.append(pd.Series(unread, dtype=object).reindex(batch.index, fill_value=""))
        outside = values.notna() & ~values.between(low, high).fillna(True)
        checks.append(
            (f"{rule.name}: " + values.astype(str) + f" outside [{low}, {high}]").where(outside, "")
        )
    for rule in [rule for rule in contract if rule.codes]:
        unknown = ~batch[rule.name].isin(rule.codes)
        checks.append(
            (f"{rule.name}: unknown code " + batch[rule.name].fillna("<missing>")).where(unknown, "")
        )
    reasons = pd.concat(checks, axis=1).astype(str).itertuples(index=False, name=None)
    return pd.Series(["; ".join(filter(None, row)) for row in reasons], index=batch.index, dtype="string")


def flag_invalid_rows(batch: pd.DataFrame, contract: RecordContract = RECORD_CONTRACT) -> pd.DataFrame:
    """Add ``problems``: why each row breaks the record contract (13 fields, bounds, known codes)."""
    return batch.assign(problems=_problems(batch, contract))


def select_valid_rows(flagged: pd.DataFrame) -> pd.DataFrame:
    """The rows to append to the raw table, keyed by their content and group.

    The key leaves the batch out: a record that a later batch serves again (the course API's
    batches repeat) is the same stored row, counted again by the raw table (``times_seen``).
    """
    valid = flagged.loc[flagged["problems"] == "", [*API_COLUMNS, *BATCH_COLUMNS]]
    return valid.assign(row_key=row_hashes(valid, [*API_COLUMNS, "group_number"]))


def select_quarantined_rows(flagged: pd.DataFrame) -> pd.DataFrame:
    """The rows that failed validation, exactly as served, with the reason: never dropped silently."""
    quarantined = flagged.loc[flagged["problems"] != "", ["raw_record", *BATCH_COLUMNS, "problems"]]
    return quarantined.rename(columns={"problems": "reason"}).assign(
        row_key=row_hashes(quarantined, ["raw_record", "group_number", "batch_number"])
    )


def summarize_batch(flagged: pd.DataFrame) -> dict[str, object]:
    """What this run collected; an empty batch means the API said that all the data was collected."""
    quarantined = int((flagged["problems"] != "").sum())
    return {
        "group_number": int(flagged["group_number"].iloc[0]) if len(flagged) else None,
        "batch_number": int(flagged["batch_number"].iloc[0]) if len(flagged) else None,
        "rows_received": len(flagged),
        "rows_valid": len(flagged) - quarantined,
        "rows_quarantined": quarantined,
        "collection_finished": flagged.empty,
    }
