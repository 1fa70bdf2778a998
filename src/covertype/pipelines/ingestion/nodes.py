"""Harvest, validation and shaping of one collected batch; the catalog does all the I/O."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

import pandas as pd

from covertype.data.convert import NotAnInteger, api_records_to_frame, to_int64
from covertype.data.hashing import row_hashes
from covertype.data.schema import API_COLUMNS, RECORD_CONTRACT, RecordContract
from covertype.datasets.batch_api_dataset import BatchDraws, Draw

logger = logging.getLogger(__name__)

BATCH_COLUMNS = ("group_number", "batch_number", "collected_at")


@dataclass(frozen=True)
class HarvestSettings:
    """``harvest`` in parameters_ingestion.yml: how long to keep drawing from the current batch."""

    enabled: bool = False
    max_calls: int = 40
    min_new_share: float = 0.02
    judged_over_calls: int = 2
    pause_seconds: float = 1.0
    window_seconds: float = 300.0
    closing_margin_seconds: float = 15.0


@dataclass(frozen=True)
class CallCount:
    """What one call brought: its distinct rows, how many were new, how many were known before it."""

    rows: int
    new: int
    known_before: int


def estimate_batch_rows(calls: list[CallCount]) -> float | None:
    """The batch's distinct rows, by the Schnabel capture-recapture estimate over the calls.

    Every call is a random sample of the batch; the share of its rows already seen tells how big
    the batch is. None until some call brought a row seen before.
    """
    recaptured = sum(call.rows - call.new for call in calls)
    if recaptured == 0:
        return None
    return sum(call.rows * call.known_before for call in calls) / recaptured


def stop_reason(
    settings: HarvestSettings, calls: list[CallCount], elapsed: float, longest_call: float
) -> str:
    """Why the harvest stops after these calls ("" to go on)."""
    if len(calls) >= (settings.max_calls if settings.enabled else 1):
        return "call budget spent" if settings.enabled else "harvest off: one call"
    recent = calls[1:][-settings.judged_over_calls :]
    if recent and sum(call.new for call in recent) < settings.min_new_share * sum(
        call.rows for call in recent
    ):
        return "few new rows"
    if (
        elapsed + settings.pause_seconds + longest_call
        > settings.window_seconds - settings.closing_margin_seconds
    ):
        return "window closing"
    return ""


def _typed(first_seen: dict[str, tuple[object, Draw]], group_number: int, batch_number: int) -> pd.DataFrame:
    """The distinct rows typed, each with the time of the call that first served it."""
    frame = api_records_to_frame([record for record, _ in first_seen.values()])
    collected = [draw.collected_at for _, draw in first_seen.values()]
    frame["group_number"] = pd.Series(group_number, index=frame.index, dtype="int64")
    frame["batch_number"] = pd.Series(batch_number, index=frame.index, dtype="int64")
    frame["collected_at"] = pd.Series(collected, index=frame.index, dtype="datetime64[us, UTC]")
    return frame


def harvest_batch(draws: BatchDraws, harvest: dict) -> tuple[pd.DataFrame, dict[str, object]]:
    """Draw from the current batch until a stop rule holds; the distinct rows typed, and a report.

    Stops at once on the completion answer, and when the batch changes (its window closed); else
    after ``max_calls`` calls (one when harvest is off), when the last ``judged_over_calls`` calls
    brought fewer new rows than ``min_new_share`` of their rows, or when the next call might end
    after the window (``window_seconds`` from the first call, less ``closing_margin_seconds``).
    """
    settings = HarvestSettings(**harvest)
    first_seen: dict[str, tuple[object, Draw]] = {}
    calls: list[CallCount] = []
    received, longest_call, batch_number, reason = 0, 0.0, None, ""
    while not reason:
        draw = draws.draw(settings.pause_seconds if calls else 0.0)
        if draw.collection_finished:
            reason = "collection finished"
            break
        if batch_number is not None and draw.batch_number != batch_number:
            logger.warning(
                "Harvest: batch %d began; its %d rows are left to the next run",
                draw.batch_number,
                len(draw.records),
            )
            reason = "the next batch began"
            break
        batch_number = draw.batch_number
        known_before, call_rows = len(first_seen), set()
        for record in draw.records:
            key = json.dumps(record)
            call_rows.add(key)
            first_seen.setdefault(key, (record, draw))
        calls.append(CallCount(len(call_rows), len(first_seen) - known_before, known_before))
        received += len(draw.records)
        longest_call = max(longest_call, draw.seconds)
        logger.info(
            "Harvest call %d: %d rows, %d new, %d distinct so far",
            len(calls),
            len(draw.records),
            calls[-1].new,
            len(first_seen),
        )
        reason = stop_reason(settings, calls, draws.elapsed_seconds, longest_call)
    estimated = estimate_batch_rows(calls)
    report = {
        "calls": len(calls),
        "rows_received": received,
        "distinct_rows": len(first_seen),
        "new_rows_per_call": [call.new for call in calls],
        "estimated_batch_rows": None if estimated is None else round(estimated),
        "estimated_coverage": None if estimated is None else round(min(1.0, len(first_seen) / estimated), 4),
        "stopped_because": reason,
        "seconds": round(draws.elapsed_seconds, 1),
        # The API said it has nothing left, in this run: after the rows above (the last batch), or at once.
        "collection_finished": reason == "collection finished",
        "settings": asdict(settings),
    }
    logger.info(
        "Harvest of batch %s: %s", batch_number, {k: v for k, v in report.items() if k != "new_rows_per_call"}
    )
    return _typed(first_seen, draw.group_number, batch_number or 0), report


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


def summarize_batch(flagged: pd.DataFrame, harvest_report: dict[str, object]) -> dict[str, object]:
    """What this run collected and how it harvested (docs/explanation/reliability.md, "Bookkeeping").

    ``rows_received`` counts every row served, repeats included; ``rows_distinct`` the rows kept;
    ``collection_finished``: the API answered, during this run, that it has nothing left to serve
    (``harvest.stopped_because`` is then "collection finished"); the rows of the run, if any
    (``batch_number`` not None), are the last batch's.
    """
    quarantined = int((flagged["problems"] != "").sum())
    harvest = {
        key: value
        for key, value in harvest_report.items()
        if key not in ("rows_received", "collection_finished")
    }
    return {
        "group_number": int(flagged["group_number"].iloc[0]) if len(flagged) else None,
        "batch_number": int(flagged["batch_number"].iloc[0]) if len(flagged) else None,
        "rows_received": harvest_report["rows_received"],
        "rows_distinct": len(flagged),
        "rows_valid": len(flagged) - quarantined,
        "rows_quarantined": quarantined,
        "collection_finished": harvest_report["collection_finished"],
        "harvest": harvest,
    }
