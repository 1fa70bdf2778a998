"""Validation and shaping of one collected batch; the catalog does all the I/O."""

from __future__ import annotations

import json

import pandas as pd

from covertype.data.hashing import row_hashes
from covertype.data.schema import API_COLUMNS, RECORD_CONTRACT, RecordContract

BATCH_COLUMNS = ("group_number", "batch_number", "collected_at")


def _problems(batch: pd.DataFrame, contract: RecordContract) -> pd.Series:
    """For each row, the reasons it is invalid joined by '; ' (empty when it is valid).

    The field count comes first, then the numbers' problems, then the codes', each in field order.
    """
    none = pd.Series("", index=batch.index)
    field_counts = batch["raw_record"].map(
        lambda raw: len(record) if isinstance(record := json.loads(raw), list) else 0
    )
    checks = [
        (f"expected {len(contract)} fields, got " + field_counts.astype(str)).where(
            field_counts != len(contract), ""
        )
    ]
    for rule in [rule for rule in contract if rule.bounds is not None]:
        low, high = rule.bounds
        values = batch[rule.name]
        checks.append(none.mask(values.isna(), f"{rule.name}: missing or not a whole number"))
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
    """The rows to append to the raw table, keyed by their content, group and batch."""
    valid = flagged.loc[flagged["problems"] == "", [*API_COLUMNS, *BATCH_COLUMNS]]
    return valid.assign(row_key=row_hashes(valid, [*API_COLUMNS, "group_number", "batch_number"]))


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
