"""Every answered record in the prediction log, read back as served traffic by the monitoring pipeline."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from tenacity import Retrying, stop_after_delay, wait_fixed

from covertype.config import Settings
from covertype.data.schema import FEATURE_COLUMNS
from covertype.datasets import SQLAppendDataset
from covertype.datasets.prediction_log_dataset import PredictionLogDataset
from covertype.stack.processes import free_port
from covertype.stack.serving import bentoml_service
from tests.conftest import RECORD, kedro_run
from tests.monitoring.conftest import exposed

pytestmark = pytest.mark.integration

#: Served traffic is reported per closed window: short ones here, so a test waits seconds, not an hour.
WINDOW_SECONDS = 3


def logged(folder: Path, request_id: str, records: int) -> pd.DataFrame:
    """The log's lines of one request, once the writer thread has written all of them."""
    for attempt in Retrying(stop=stop_after_delay(30), wait=wait_fixed(0.2), reraise=True):
        with attempt:
            lines = PredictionLogDataset(path=str(folder)).load()
            lines = lines[lines["request_id"] == request_id]
            assert len(lines) == records
    return lines


def test_each_answered_record_is_logged_and_reported_as_served_traffic(
    champion_service, trained_project, api_rows, tmp_path
):
    records = [dict(zip(FEATURE_COLUMNS, row[:-1], strict=True)) for row in api_rows[5_000:5_150]]
    answer = httpx.post(f"{champion_service}/predict", json={"records": records}, timeout=60)
    assert answer.status_code == 200
    request_id = answer.headers["x-request-id"]
    folder = Path(Settings(**trained_project.env).prediction_log_path)
    lines = logged(folder, request_id, len(records))
    assert lines["cover_type"].tolist() == [prediction["cover_type"] for prediction in answer.json()]
    assert lines["Elevation"].tolist() == [int(record["Elevation"]) for record in records]
    assert set(lines["model_version"]) == {answer.json()[0]["model_version"]}
    given = httpx.post(
        f"{champion_service}/predict",
        json={"records": RECORD},
        headers={"X-Request-ID": "mine-1"},
        timeout=60,
    )
    assert given.status_code == 200 and given.headers["x-request-id"] == "mine-1"
    assert len(logged(folder, "mine-1", 1)) == 1

    # The monitoring pipeline on a copy of the trained project's stores, reading the service's log.
    for store in ("raw.db", "mlflow.db"):
        shutil.copy(trained_project.workdir / store, tmp_path / store)
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
        "COVERTYPE_RAW_STORE_URL": f"sqlite:///{tmp_path}/raw.db",
        "COVERTYPE_DATA_DIR": str(tmp_path / "data"),
        "COVERTYPE_PREDICTION_LOG_DIR": str(folder),
    }
    time.sleep(WINDOW_SECONDS)  # the request's window closes
    served = {"window": f"{WINDOW_SECONDS}s", "min_rows": len(records), "lookback_windows": 1_000}
    kedro_run("local", ["monitoring"], {"monitoring": {"served": served}}, environ=env, cwd=tmp_path)
    store = {"con": env["COVERTYPE_RAW_STORE_URL"]}
    reports = SQLAppendDataset(table_name="drift_reports", credentials=store).load()
    sent_at = lines["time"].iloc[0].tz_localize(None)
    (mine,) = reports[
        (reports["source"] == "served")
        & (reports["window_start"] <= sent_at)
        & (sent_at < reports["window_end"])
    ].itertuples()
    assert mine.rows >= len(records) and mine.reference_version == "1" and mine.fields == 12
    fields = SQLAppendDataset(table_name="drift_fields", credentials=store).load()
    assert len(fields[fields["report_id"] == mine.report_id]) == 12


def test_an_unwritable_log_leaves_every_prediction_answered_and_counts_what_it_dropped(
    trained_project, tmp_path
):
    blocked = tmp_path / "a_file"
    blocked.write_text("the log's folder cannot be made under a file")
    port = free_port()
    env = {
        **trained_project.env,
        "COVERTYPE_CHAMPION_POLL_SECONDS": "0",
        "COVERTYPE_PREDICTION_LOG_DIR": str(blocked / "predictions"),
    }
    with bentoml_service(port, tmp_path / "bentoml", env):
        service = f"http://127.0.0.1:{port}"
        for _ in range(3):
            answer = httpx.post(f"{service}/predict", json={"records": [RECORD, RECORD]}, timeout=60)
            assert answer.status_code == 200 and len(answer.json()) == 2
        dropped = ("covertype_prediction_log_dropped_total", frozenset({("reason", "write_failed")}))
        for attempt in Retrying(stop=stop_after_delay(30), wait=wait_fixed(0.2), reraise=True):
            with attempt:
                assert exposed(service)[dropped] == 6
