"""A tracked run says which process and which Airflow task ran it; runs nothing runs any more are found."""

from __future__ import annotations

import subprocess

import psutil
from mlflow.entities import Run, RunData, RunInfo, RunTag

from covertype.config import Settings
from covertype.hooks import abandoned_because, airflow_tags, process_tags, run_name

AIRFLOW = {
    "AIRFLOW_CTX_DAG_ID": "covertype",
    "AIRFLOW_CTX_DAG_RUN_ID": "scheduled__2026-12-07T15:05:00+00:00",
    "AIRFLOW_CTX_TASK_ID": "training",
    "AIRFLOW_CTX_TRY_NUMBER": "2",
}


def run_with(tags: dict[str, str]) -> Run:
    info = RunInfo("r", "0", "", "RUNNING", 0, None, "active")
    return Run(info, RunData(tags=[RunTag(key, value) for key, value in tags.items()]))


def test_under_airflow_the_run_is_tagged_and_named_after_the_dag_run_and_try():
    tags = airflow_tags(AIRFLOW)
    assert tags == {
        "airflow.dag_id": "covertype",
        "airflow.run_id": "scheduled__2026-12-07T15:05:00+00:00",
        "airflow.task_id": "training",
        "airflow.try_number": "2",
    }
    assert run_name(tags, "training") == "covertype/scheduled__2026-12-07T15:05:00+00:00/training try 2"
    assert airflow_tags({}) == {} and run_name({}, "training") is None


def test_a_run_whose_process_is_gone_is_abandoned_and_one_whose_process_lives_is_not():
    here = process_tags(psutil.Process())
    with subprocess.Popen(["sleep", "60"]) as child:
        living = process_tags(psutil.Process(child.pid))
        assert abandoned_because(run_with(living), here) is None
        child.kill()
    assert (
        abandoned_because(run_with(living), here)
        == f"its process {child.pid} on {here['process.host']} is gone"
    )
    # The same PID taken by another process since: the start time tells them apart.
    assert abandoned_because(run_with({**here, "process.started": "1.00"}), here) is not None
    assert abandoned_because(run_with({**living, "process.host": "elsewhere"}), here) is None


def test_an_earlier_try_of_the_same_airflow_task_is_abandoned():
    current = {**process_tags(psutil.Process()), **airflow_tags(AIRFLOW)}
    elsewhere = {"process.host": "worker-2", "process.pid": "1", "process.started": "1.00"}
    first_try = {**elsewhere, **airflow_tags({**AIRFLOW, "AIRFLOW_CTX_TRY_NUMBER": "1"})}
    assert abandoned_because(run_with(first_try), current) == "Airflow retried the task: try 2 replaces it"
    other_run = {**first_try, "airflow.run_id": "manual__2026-12-07"}
    assert abandoned_because(run_with(other_run), current) is None


def test_mlflow_retries_are_bounded_by_default_and_named_by_mlflows_own_variables():
    assert Settings().mlflow_http_environment() == {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    }
    chosen = Settings(MLFLOW_HTTP_REQUEST_MAX_RETRIES=0).mlflow_http_environment()
    assert chosen["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
