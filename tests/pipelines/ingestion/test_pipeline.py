"""`kedro run --pipeline ingestion` against a real batch API, into SQLite (default) and MariaDB (stack)."""

import json

import pandas as pd
import pytest
import sqlalchemy as sa

from tests.conftest import PROJECT_ROOT, kedro_run
from tests.http_stub import serve

pytestmark = pytest.mark.integration


def run_ingestion(env: str, batch_api_url: str) -> dict:
    kedro_run(env, ["ingestion"], {"batch_api_url": batch_api_url})
    return json.loads((PROJECT_ROOT / "data/08_reporting/ingestion_summary.json").read_text())


def stored_per_batch(url: str) -> dict[int, int]:
    with sa.create_engine(url).connect() as connection:
        counts = pd.read_sql(
            "SELECT batch_number, COUNT(*) AS n FROM raw_covertype GROUP BY batch_number", connection
        )
    return dict(zip(counts["batch_number"], counts["n"], strict=True))


def test_default_environment_appends_each_batch_once_to_sqlite(
    tmp_path, monkeypatch, running_batch_api, isolated_summary
):
    url = f"sqlite:///{tmp_path}/raw.db"
    monkeypatch.setenv("COVERTYPE_RAW_STORE_URL", url)
    summary = run_ingestion("local", running_batch_api)
    assert summary["batch_number"] == 1 and summary["rows_valid"] == 1_500
    run_ingestion("local", running_batch_api)  # same window: the same whole batch again
    assert stored_per_batch(url) == {1: 1_500}


def test_stack_environment_creates_its_database_and_stores_into_mysql(
    mysql_url, monkeypatch, tmp_path, running_batch_api, isolated_summary
):
    # kedro-mlflow opens its tracking store when the session starts, even for an untracked pipeline.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    database = mysql_url.rsplit("/", 1)[1]
    for name, value in {"MYSQL_HOST": "127.0.0.1", "MYSQL_USER": "root", "MYSQL_DATABASE": database}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MYSQL_PASSWORD", "")
    with sa.create_engine(mysql_url.rsplit("/", 1)[0]).begin() as connection:
        connection.exec_driver_sql(f"DROP DATABASE {database}")  # a fresh server: no database yet
    run_ingestion("stack", running_batch_api)
    assert stored_per_batch(mysql_url) == {1: 1_500}


def serve_batch(records: list[list[object]]) -> str:
    """A real HTTP server answering every ``/data`` call with these records as batch 1."""
    body = json.dumps({"group_number": 1, "batch_number": 1, "data": records}).encode()
    return serve(lambda _: (200, body))


def test_rows_no_column_can_hold_are_quarantined_and_the_rest_of_the_batch_is_stored(
    tmp_path, monkeypatch, isolated_summary
):
    good = ["2596", "51", "3", "258", "0", "510", "221", "232", "148", "6279", "Rawah", "C7745", "5"]
    bad = [["1e19", *good[1:]], [good[0], True, *good[2:]], [*good[:2], "1.5", *good[3:]], [*good[:12], ""]]
    url = f"sqlite:///{tmp_path}/raw.db"
    monkeypatch.setenv("COVERTYPE_RAW_STORE_URL", url)
    summary = run_ingestion("local", serve_batch([good, *bad, ["2597", *good[1:]]]))
    assert (summary["rows_valid"], summary["rows_quarantined"]) == (2, 4)
    with sa.create_engine(url).connect() as connection:
        reasons = pd.read_sql("SELECT reason FROM quarantined_covertype ORDER BY id", connection)["reason"]
        stored = pd.read_sql("SELECT Elevation FROM raw_covertype ORDER BY id", connection)["Elevation"]
    assert stored.tolist() == [2596, 2597]
    assert reasons.tolist() == [
        'Elevation: "1e19" is too big for a 64-bit integer',
        "Aspect: true is a boolean, not a number",
        'Slope: "1.5" is not a whole number',
        "Cover_Type: missing",
    ]
