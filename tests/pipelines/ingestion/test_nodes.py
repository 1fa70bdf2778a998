"""Validation sends every bad row to quarantine with its reasons and keys rows by their content."""

import pandas as pd
import pytest

from covertype.data.convert import api_records_to_frame
from covertype.pipelines.ingestion.nodes import (
    flag_invalid_rows,
    select_quarantined_rows,
    select_valid_rows,
    summarize_batch,
)

GOOD = ["2596", "51", "3", "258", "0", "510", "221", "232", "148", "6279", "Rawah", "C7745", "5"]


def batch_of(*records: list[str], batch_number: int = 2) -> pd.DataFrame:
    frame = api_records_to_frame(list(records))
    return frame.assign(
        group_number=1, batch_number=batch_number, collected_at=pd.Timestamp("2026-11-23", tz="UTC")
    )


def reason_for(record: list[str]) -> str:
    return flag_invalid_rows(batch_of(record))["problems"].iloc[0]


def with_value(position: int, value: str) -> list[str]:
    return [*GOOD[:position], value, *GOOD[position + 1 :]]


def test_a_good_row_has_no_problems():
    assert reason_for(GOOD) == ""


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (GOOD[:12], "expected 13 fields, got 12; Cover_Type: missing"),
        ([*GOOD, "extra"], "expected 13 fields, got 14"),
        (with_value(0, "abc"), 'Elevation: "abc" is not a number'),
        (with_value(0, "1e19"), 'Elevation: "1e19" is too big for a 64-bit integer'),
        (
            with_value(0, "99999999999999999999"),
            'Elevation: "99999999999999999999" is too big for a 64-bit integer',
        ),
        (with_value(1, True), "Aspect: true is a boolean, not a number"),
        (with_value(12, False), "Cover_Type: false is a boolean, not a number"),
        (with_value(2, "1.5"), 'Slope: "1.5" is not a whole number'),
        (with_value(3, ""), "Horizontal_Distance_To_Hydrology: missing"),
        (with_value(3, None), "Horizontal_Distance_To_Hydrology: missing"),
        (with_value(4, ["1"]), 'Vertical_Distance_To_Hydrology: ["1"] is not a number'),
        (with_value(10, True), "Wilderness_Area: unknown code True"),
        (with_value(1, "361"), "Aspect: 361 outside [0, 360]"),
        (with_value(6, "-1"), "Hillshade_9am: -1 outside [0, 255]"),
        (with_value(10, "Yellowstone"), "Wilderness_Area: unknown code Yellowstone"),
        (with_value(11, "C1234"), "Soil_Type: unknown code C1234"),
        (with_value(12, "8"), "Cover_Type: 8 outside [1, 7]"),
        (with_value(12, "0"), "Cover_Type: 0 outside [1, 7]"),
    ],
)
def test_each_problem_is_named_with_the_field(record, reason):
    assert reason_for(record) == reason


def test_valid_and_quarantined_rows_partition_the_batch():
    flagged = flag_invalid_rows(batch_of(GOOD, with_value(0, "x"), with_value(2, "12")))
    valid, quarantined = select_valid_rows(flagged), select_quarantined_rows(flagged)
    assert len(valid) == 2 and len(quarantined) == 1
    assert quarantined["reason"].tolist() == ['Elevation: "x" is not a number']
    assert quarantined["raw_record"].iloc[0].startswith('["x", "51"')
    assert valid["row_key"].str.len().eq(64).all() and valid["row_key"].is_unique
    report = {"calls": 2, "rows_received": 5, "collection_finished": False, "stopped_because": "few new rows"}
    assert summarize_batch(flagged, report) == {
        "group_number": 1, "batch_number": 2, "rows_received": 5, "rows_distinct": 3,
        "rows_valid": 2, "rows_quarantined": 1, "collection_finished": False,
        "harvest": {"calls": 2, "stopped_because": "few new rows"},
    }  # fmt: skip


def test_values_no_integer_column_can_hold_are_quarantined_and_the_rest_of_the_batch_is_kept():
    unrepresentable = [with_value(0, "1e19"), with_value(1, True), with_value(2, "1.5"), with_value(5, "")]
    flagged = flag_invalid_rows(batch_of(GOOD, *unrepresentable, with_value(0, "2597")))
    assert select_valid_rows(flagged)["Elevation"].tolist() == [2596, 2597]
    assert len(select_quarantined_rows(flagged)) == len(unrepresentable)


def test_whole_numbers_written_otherwise_are_read_as_integers():
    flagged = flag_invalid_rows(
        batch_of(with_value(0, "2596.0"), with_value(0, 2596), with_value(0, "2.596e3"))
    )
    assert (flagged["problems"] == "").all() and flagged["Elevation"].tolist() == [2596] * 3


def test_a_record_keeps_its_key_across_batches_of_its_group_and_not_across_groups():
    first = select_valid_rows(flag_invalid_rows(batch_of(GOOD, batch_number=1)))
    later = select_valid_rows(flag_invalid_rows(batch_of(GOOD, batch_number=2)))
    other_group = select_valid_rows(flag_invalid_rows(batch_of(GOOD, batch_number=1).assign(group_number=2)))
    assert first["row_key"].tolist() == later["row_key"].tolist() != other_group["row_key"].tolist()


def test_an_empty_batch_means_collection_finished():
    flagged = flag_invalid_rows(batch_of())
    assert select_valid_rows(flagged).empty and select_quarantined_rows(flagged).empty
    finished = {"calls": 0, "rows_received": 0, "collection_finished": True}
    assert summarize_batch(flagged, finished)["collection_finished"] is True
