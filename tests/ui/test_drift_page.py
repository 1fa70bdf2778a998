"""The Drift page, run with AppTest on a raw store holding the monitoring pipeline's reports."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from covertype.data.convert import api_records_to_frame
from covertype.datasets import SQLAppendDataset
from covertype.pipelines.monitoring.nodes import combine_reports, report_batch_drift, report_served_drift

VIEWS = Path(__file__).resolve().parents[2] / "src/covertype/ui/views"
DRIFT = {"drift_share": 0.5}


def page() -> AppTest:
    st.cache_data.clear()  # AppTest runs in this process: forget what other tests read
    return AppTest.from_file(str(VIEWS / "drift.py"), default_timeout=60).run()


@pytest.fixture
def store(monkeypatch, tmp_path) -> str:
    url = f"sqlite:///{tmp_path}/raw.db"
    monkeypatch.setenv("COVERTYPE_RAW_STORE_URL", url)
    monkeypatch.setenv("KEDRO_ENV", "local")
    return url


def test_the_page_says_when_there_is_no_report_yet(store):
    app = page()
    assert not app.exception and "No drift report yet" in app.info[0].value


def test_the_page_shows_the_latest_verdict_the_share_over_time_and_each_field(store, api_rows):
    sample = api_records_to_frame(api_rows)
    reference, info = sample.head(3_000), {"name": "version 1 (champion): training split", "version": "1"}
    stored = [
        report_batch_drift(rows.assign(group_number=1, last_batch_number=number), reference, info, DRIFT)
        for number, rows in ((2, sample.iloc[3_000:4_500]), (3, sample[sample["Wilderness_Area"] == "Cache"]))
    ]
    window = sample.iloc[5_000:5_300].assign(time=pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=2))
    served = {"window": "1h", "min_rows": 100, "lookback_windows": 24}
    stored.append(report_served_drift(window, reference, info, DRIFT, served))
    for report, report_fields in stored:
        reports, fields = combine_reports(report, report_fields, report.head(0), report_fields.head(0))
        SQLAppendDataset(table_name="drift_reports", credentials={"con": store}, unique_key="report_id").save(
            reports
        )
        SQLAppendDataset(table_name="drift_fields", credentials={"con": store}).save(fields)

    app = page()
    assert not app.exception, app.exception[0].stack_trace
    assert not app.error
    assert app.subheader[0].value == "Latest: group 1, batch 3"
    assert [metric.value for metric in app.metric][:2] == [
        "DRIFT",
        f"{stored[1][0].loc[0, 'drifted_fields']} of 12",
    ]
    assert "version 1 (champion)" in app.caption[0].value
    over_time = app.dataframe[0].value
    assert len(over_time) == 12 and list(over_time.columns) == [
        "group 1, batch 2 (reference version 1)",
        "group 1, batch 3 (reference version 1)",
    ]
    assert len(app.dataframe[1].value) == 12

    app.radio[0].set_value("served").run()
    assert app.subheader[0].value.startswith("Latest: served ") and not app.exception
