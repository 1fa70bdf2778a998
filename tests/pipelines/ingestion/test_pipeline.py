"""`kedro run --pipeline ingestion` against a real batch API, into SQLite (default) and MariaDB (stack)."""

import json

import pandas as pd
import pytest
import sqlalchemy as sa
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.integration


def run_ingestion(env: str, batch_api_url: str) -> dict:
    bootstrap_project(PROJECT_ROOT)
    with KedroSession.create(
        project_path=PROJECT_ROOT, env=env, runtime_params={"batch_api_url": batch_api_url}
    ) as session:
        session.run(pipeline_names=["ingestion"])
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
