"""The bookkeeping of a tracked Kedro run: who started it, bounded MLflow retries, runs left behind.

``RunBookkeeping`` runs after kedro-mlflow's hook has opened the session's MLflow run (Kedro calls
plugin hooks, registered after ``settings.HOOKS``, first). It

- tags the run with the process that runs it (host, PID, the process's start time) and, under
  Airflow, with the ``dag_id``, ``run_id``, task and try number Airflow exports to its task's
  process (``AIRFLOW_CTX_*``), and names the run after them;
- closes the runs of the same experiment that nothing runs any more (``abandoned_because``): a
  killed process cannot end its run, which would stay RUNNING forever;
- bounds MLflow's HTTP retries for the session with MLflow's own variables, valued by the settings
  (``Settings.mlflow_http_environment``): MLflow's defaults retry for about four minutes before a
  caller sees an error. The variables are put back as they were when the session's run ends.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import mlflow
import psutil
from kedro.framework.hooks import hook_impl
from mlflow.entities import Run

from covertype.config import load_settings
from covertype.registry import ModelRegistry

#: Airflow's variables in its task's process -> the run tag that keeps each.
AIRFLOW_TAGS = {
    "AIRFLOW_CTX_DAG_ID": "airflow.dag_id",
    "AIRFLOW_CTX_DAG_RUN_ID": "airflow.run_id",
    "AIRFLOW_CTX_TASK_ID": "airflow.task_id",
    "AIRFLOW_CTX_TRY_NUMBER": "airflow.try_number",
}
#: The run tags naming the process that runs it.
HOST_TAG, PID_TAG, STARTED_TAG = "process.host", "process.pid", "process.started"


def airflow_tags(environ: dict[str, str]) -> dict[str, str]:
    """The Airflow task's tags, from the variables Airflow exports to it (none outside Airflow)."""
    return {tag: environ[name] for name, tag in AIRFLOW_TAGS.items() if environ.get(name)}


def run_name(tags: dict[str, str], pipelines: str) -> str | None:
    """``<dag_id>/<run_id>/<task> try <n>``: which DAG run this was; None outside Airflow."""
    if "airflow.run_id" not in tags:
        return None
    return (
        f"{tags['airflow.dag_id']}/{tags['airflow.run_id']}/{tags.get('airflow.task_id', pipelines)} "
        f"try {tags.get('airflow.try_number', '?')}"
    )


def process_tags(process: psutil.Process) -> dict[str, str]:
    return {
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(process.pid),
        STARTED_TAG: f"{process.create_time():.2f}",
    }


def abandoned_because(run: Run, current: dict[str, str]) -> str | None:
    """Why no process runs ``run`` any more, or None when one may (or nothing tells).

    A run of this host whose process is gone (or whose PID another process took since) is abandoned;
    so is an earlier try of the same Airflow task: Airflow retries a task only once its last try ended.
    """
    tags = run.data.tags
    if tags.get(HOST_TAG) == current[HOST_TAG] and PID_TAG in tags:
        pid = int(tags[PID_TAG])
        try:
            alive = f"{psutil.Process(pid).create_time():.2f}" == tags.get(STARTED_TAG)
        except psutil.NoSuchProcess:
            alive = False
        if not alive:
            return f"its process {pid} on {tags[HOST_TAG]} is gone"
    same_task = all(
        tags.get(key) == current.get(key) for key in ("airflow.dag_id", "airflow.run_id", "airflow.task_id")
    )
    earlier, now = tags.get("airflow.try_number"), current.get("airflow.try_number")
    if same_task and earlier and now and int(earlier) < int(now):
        return f"Airflow retried the task: try {now} replaces it"
    return None


class RunBookkeeping:
    """Tags and names the session's MLflow run, closes abandoned runs, bounds MLflow's retries."""

    def __init__(self) -> None:
        self._saved_environment: dict[str, str | None] = {}

    @hook_impl(tryfirst=True)  # before kedro-mlflow's, whose setup asks the MLflow server already
    def after_context_created(self, context: Any) -> None:
        limits = load_settings().mlflow_http_environment()
        self._saved_environment = {name: os.environ.get(name) for name in limits}
        os.environ.update(limits)

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        run = mlflow.active_run()
        if run is None:  # an untracked pipeline (mlflow.yml: disable_tracking)
            return
        tags = {**process_tags(psutil.Process()), **airflow_tags(dict(os.environ))}
        mlflow.set_tags(tags)
        client = mlflow.MlflowClient()
        pipelines = "+".join(run_params.get("pipeline_names") or ["__default__"])
        name = run_name(tags, pipelines)
        if name is not None:
            client.update_run(run.info.run_id, name=name)
        settings = load_settings()
        registry = ModelRegistry.from_settings(settings, mlflow.get_tracking_uri(), mlflow.get_registry_uri())

        def abandoned(candidate: Run) -> str | None:
            return None if candidate.info.run_id == run.info.run_id else abandoned_because(candidate, tags)

        registry.close_abandoned_runs(run.info.experiment_id, abandoned)

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._restore_environment()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._restore_environment()

    def _restore_environment(self) -> None:
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environment = {}
