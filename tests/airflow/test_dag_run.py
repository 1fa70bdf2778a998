"""A real Airflow run of the generated DAG: `airflow dags test` against a running batch API.

The DAG runs in a throwaway copy of the project (pyproject.toml, conf/, the DAG) from another working
directory, with the embedded stores (KEDRO_ENV=local): the raw store and MLflow in temporary SQLite files.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from covertype.stack.airflow import AIRFLOW, DAG_ID, airflow_environment, create_dag_command, migrate
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.integration

# `dags test` ignores SIGTERM and waits out retry delays in-process: retries=0 and a SIGKILL deadline.
DAG_TEST_TIMEOUT = 600


def copy_project(target: Path) -> Path:
    """A project folder holding what the DAG's tasks read: pyproject.toml, conf/ and the DAG (retries=0)."""
    target.mkdir()
    shutil.copy(PROJECT_ROOT / "pyproject.toml", target)
    shutil.copytree(PROJECT_ROOT / "conf", target / "conf")
    subprocess.run(
        create_dag_command(target / "airflow_dags", params="retries=0"),
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


def rows(database: Path, query: str) -> list[tuple]:
    with sqlite3.connect(database) as connection:
        return connection.execute(query).fetchall()


def test_a_dag_run_collects_the_current_batch_and_trains_with_every_task_green(tmp_path, running_batch_api):
    project = copy_project(tmp_path / "project")
    home = tmp_path / "airflow_home"
    raw_store = tmp_path / "raw.db"
    env = {
        **airflow_environment(home, dags_folder=project / "airflow_dags"),
        "KEDRO_ENV": "local",
        "COVERTYPE_RAW_STORE_URL": f"sqlite:///{raw_store}",
        "COVERTYPE_BATCH_API_URL": running_batch_api,
        "MLFLOW_TRACKING_URI": f"sqlite:///{project}/mlflow.db",
    }
    migrate(env, home / "db-migrate.log")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    started = time.monotonic()
    done = subprocess.run(
        [AIRFLOW, "dags", "test", DAG_ID],
        cwd=elsewhere,  # the DAG finds the project from its own location, not from the working directory
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=DAG_TEST_TIMEOUT,  # SIGKILL on expiry
        check=False,
    )
    print(f"airflow dags test {DAG_ID}: {time.monotonic() - started:.1f} s", file=sys.stderr)

    tasks = rows(
        home / "airflow.db", "SELECT task_id, state, duration FROM task_instance ORDER BY start_date"
    )
    print("tasks (id, state, seconds):", tasks, file=sys.stderr)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert rows(home / "airflow.db", "SELECT state FROM dag_run") == [("success",)]
    stages = yaml.safe_load((project / "conf/base/airflow.yml").read_text())["default"]["stages"]
    assert [(task_id, state) for task_id, state, _ in tasks] == [(stage, "success") for stage in stages]
    assert rows(raw_store, "SELECT batch_number, COUNT(*) FROM raw_covertype GROUP BY batch_number") == [
        (1, 1_500)
    ]
    # The stages handed the data over through the catalog: feature files in the project, and training
    # is one MLflow run (its search trials are nested runs under it).
    assert (project / "data/04_feature/features_train.parquet").exists()
    top_level_runs = rows(
        project / "mlflow.db",
        "SELECT name, status FROM runs WHERE run_uuid NOT IN "
        "(SELECT run_uuid FROM tags WHERE key = 'mlflow.parentRunId')",
    )
    ((name, status),) = top_level_runs
    (dag_run_id,) = rows(home / "airflow.db", "SELECT run_id FROM dag_run")[0]
    # The MLflow run says which DAG run, task and try it was.
    assert (name, status) == (f"{DAG_ID}/{dag_run_id}/training try 1", "FINISHED")
    tags = dict(
        rows(
            project / "mlflow.db",
            f"SELECT key, value FROM tags WHERE run_uuid = (SELECT run_uuid FROM runs WHERE name = '{name}')",
        )
    )
    assert {
        key: tags[key]
        for key in ("airflow.dag_id", "airflow.run_id", "airflow.task_id", "airflow.try_number")
    } == {
        "airflow.dag_id": DAG_ID,
        "airflow.run_id": dag_run_id,
        "airflow.task_id": "training",
        "airflow.try_number": "1",
    }
