"""Drift tests and reports: the test chosen per field, the verdicts, the reference, the report forms."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wasserstein_distance

from covertype.data.convert import api_records_to_frame, one_hot_to_api
from covertype.data.hashing import in_test_split
from covertype.data.schema import FEATURE_COLUMNS
from covertype.data.shift import one_area_from_batch
from covertype.data.source import load_covertype
from covertype.datasets import SQLAppendDataset
from covertype.drift import DriftSettings, choose_test, compare, counted_wasserstein_distance, verdict
from covertype.pipelines.ingestion.nodes import flag_invalid_rows, select_valid_rows
from covertype.pipelines.monitoring.nodes import (
    FIELD_TYPES,
    REPORT_TYPES,
    alert_metrics,
    combine_reports,
    drift_metrics,
    report_batch_drift,
    report_document,
    report_page,
    report_served_drift,
    select_latest_batch,
    select_reference,
)

DRIFT = {"drift_share": 0.5}


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    """The real sample, typed as ingestion stores it."""
    return api_records_to_frame(one_hot_to_api(load_covertype("sample")).to_numpy().tolist())


def test_the_test_follows_the_field_kind_and_the_reference_size_as_evidently_chooses():
    settings = DriftSettings()
    assert choose_test("numeric", 1_000, settings).name == "ks"
    assert choose_test("categorical", 1_000, settings).name == "chisquare"
    assert choose_test("binary", 1_000, settings).name == "z"
    assert choose_test("numeric", 1_001, settings).name == "wasserstein"
    assert choose_test("categorical", 1_001, settings).name == "jensenshannon"
    few_values = pd.DataFrame({"Slope": [1, 2, 3] * 10, "Aspect": [0, 1] * 15})
    kinds = compare(few_values, few_values, fields=["Slope", "Aspect"]).set_index("field")["kind"]
    assert kinds.to_dict() == {"Slope": "categorical", "Aspect": "binary"}


@pytest.mark.parametrize("reference_rows", [800, 10_000])
def test_one_areas_rows_drift_and_a_random_part_of_the_sample_does_not(sample, reference_rows):
    shuffled = sample.sample(frac=1.0, random_state=0)
    reference, rest = shuffled.head(reference_rows), shuffled.iloc[reference_rows:]
    same = verdict(compare(reference, rest.head(1_500)))
    assert not same["drifted"] and same["drifted_fields"] <= 2
    one_area = compare(reference, rest[rest["Wilderness_Area"] == "Rawah"].head(1_500))
    assert verdict(one_area)["drifted"] and one_area["drifted"].sum() >= 8


def test_the_countedcounted_wasserstein_distance_is_scipys():
    generator = np.random.default_rng(0)
    for low, high in ((0, 2), (-173, 601), (1_859, 3_858)):
        reference = generator.integers(low, high, 5_000).astype(float)
        current = generator.integers(low, high, 700).astype(float) + generator.integers(0, 3)
        assert counted_wasserstein_distance(reference, current) == pytest.approx(
            wasserstein_distance(reference, current)
        )
    fractions = generator.normal(size=100)
    assert counted_wasserstein_distance(fractions, fractions + 0.5) == pytest.approx(0.5)


def test_thresholds_and_the_share_are_settings(sample):
    reference, current = sample.head(5_000), sample.iloc[5_000:6_500]
    strict = DriftSettings(thresholds={"wasserstein": 0.0, "jensenshannon": 0.0}, drift_share=1.0)
    fields = compare(reference, current, strict)
    assert fields["drifted"].all() and (fields["threshold"] == 0.0).all()
    assert verdict(fields, strict)["drifted"]
    assert not verdict(fields.assign(drifted=[True] * 11 + [False]), strict)["drifted"]


def test_the_shifted_source_serves_a_mix_then_one_area_only_in_equal_batches():
    rows = one_hot_to_api(load_covertype("sample"))
    shifted = one_area_from_batch(rows, "Rawah", 4)
    batch = len(shifted) // 10
    assert len(shifted) == 10 * batch and not shifted.duplicated().any()
    assert shifted.head(3 * batch)["Wilderness_Area"].nunique() == 4
    assert set(shifted.iloc[3 * batch :]["Wilderness_Area"]) == {"Rawah"}


def test_a_test_of_nothing_is_refused(sample):
    with pytest.raises(ValueError, match="0 current"):
        compare(sample, sample.head(0))


def stored(rows: pd.DataFrame, batch_number: int) -> pd.DataFrame:
    """Rows as the raw table holds them after ingesting them as ``batch_number``."""
    batch = rows.assign(group_number=1, batch_number=batch_number, collected_at=pd.Timestamp.now(tz="UTC"))
    valid = select_valid_rows(flag_invalid_rows(batch))
    return valid.assign(times_seen=1, last_batch_number=batch_number)


def test_the_reference_is_the_training_split_of_the_rows_the_named_version_was_trained_on(sample):
    raw = pd.concat([stored(sample.head(3_000), 1), stored(sample.iloc[3_000:4_000], 2)], ignore_index=True)
    raw = raw.assign(id=np.arange(1, len(raw) + 1))
    versions = pd.DataFrame(
        {"version": ["2", "1"], "aliases": ["challenger", "champion"], "training_rows": [4_000, 3_000]}
    )
    reference, info = select_reference(raw, versions, {"model": "champion"}, 0.2)
    first = sample.head(3_000)
    expected = first[~in_test_split(first, FEATURE_COLUMNS, 0.2)]
    assert len(reference) == len(expected) == info["rows"] and info["version"] == "1"
    assert "version 1 (champion)" in info["name"]
    assert select_reference(raw, versions, {"model": "2"}, 0.2)[1]["rows"] > len(reference)
    nothing, none = select_reference(raw, versions.head(0), {"model": "champion"}, 0.2)
    assert nothing.empty and none["version"] == ""
    latest = select_latest_batch(raw, 1)
    assert len(latest) == 1_000 and set(latest["last_batch_number"]) == {2}


def test_a_batch_report_has_one_row_and_a_row_per_field_typed_for_the_store(sample):
    batch = stored(sample.iloc[5_000:6_000], 4)
    reference, info = sample.head(3_000)[list(FEATURE_COLUMNS)], {"name": "v1", "version": "1"}
    reports, fields = report_batch_drift(batch, reference, info, DRIFT)
    assert reports.dtypes.astype(str).to_dict() == {
        name: str(pd.Series(dtype=t).dtype) for name, t in REPORT_TYPES.items()
    }
    assert list(fields.columns) == list(FIELD_TYPES) and len(fields) == 12 and fields["row_key"].is_unique
    assert reports.loc[0, "report_id"] == "batch/g1/b4/v1" and reports.loc[0, "subject"] == "group 1, batch 4"
    assert report_batch_drift(batch.head(0), reference, info, DRIFT)[0].empty
    assert report_batch_drift(batch, reference.head(0), info, DRIFT)[1].empty
    assert drift_metrics(reports, fields)["batch.drift_share"] == [
        {"value": reports.loc[0, "drift_share"], "step": 4}
    ]
    document = report_document(reports, fields)
    assert len(document["reports"]) == 1 and len(document["reports"][0]["fields"]) == 12
    assert "group 1, batch 4" in report_page(reports, fields) and "Elevation" in report_page(reports, fields)
    assert alert_metrics(reports)["values"]["covertype_batch_drift_batch_number"] == 4.0


def test_served_traffic_is_reported_per_closed_window_with_enough_records(sample):
    now = pd.Timestamp.now(tz="UTC").floor("1min")
    times = [now - pd.Timedelta(minutes=2)] * 300 + [now - pd.Timedelta(minutes=1)] * 5 + [now] * 300
    log = sample.head(605).assign(time=times)
    served = {"window": "1min", "min_rows": 10, "lookback_windows": 24}
    reports, fields = report_served_drift(
        log, sample.iloc[1_000:4_000], {"name": "v1", "version": "1"}, DRIFT, served
    )
    # The window of 5 records is too small, the current one still open.
    assert len(reports) == 1 and reports.loc[0, "window_start"] == now - pd.Timedelta(minutes=2)
    assert reports.loc[0, "source"] == "served" and reports.loc[0, "rows"] == 300 and len(fields) == 12
    assert alert_metrics(reports) == {}


def test_reports_are_stored_once_in_mysql_as_in_sqlite(sample, mysql_url, tmp_path):
    batch = stored(sample.iloc[5_000:6_000], 4)
    reports, fields = report_batch_drift(batch, sample.head(3_000), {"name": "v1", "version": "1"}, DRIFT)
    served_reports, served_fields = report_served_drift(
        sample.head(300).assign(time=pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=2)),
        sample.head(3_000),
        {"name": "v1", "version": "1"},
        DRIFT,
        {"window": "1h", "min_rows": 100, "lookback_windows": 24},
    )
    both = combine_reports(reports, fields, served_reports, served_fields)
    for url in (mysql_url, f"sqlite:///{tmp_path}/raw.db"):
        tables = [
            SQLAppendDataset(table_name="drift_reports", credentials={"con": url}, unique_key="report_id"),
            SQLAppendDataset(table_name="drift_fields", credentials={"con": url}),
        ]
        for _ in range(2):  # a report stored again adds nothing
            for table, frame in zip(tables, both, strict=True):
                table.save(frame)
        loaded, loaded_fields = (table.load() for table in tables)
        assert len(loaded) == 2 and len(loaded_fields) == 24
        assert set(loaded["source"]) == {"batch", "served"} and loaded["batch_number"].isna().sum() == 1
        assert sorted(map(bool, loaded["drifted"])) == sorted(map(bool, both[0]["drifted"]))
