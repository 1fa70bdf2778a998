"""The committed DAG: generated from the pipelines, one task per stage, scheduled every 5 minutes,
training on its own Celery queue, and refusing stores of one machine when tasks may run on others."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from kedro.config import OmegaConfigLoader
from kedro.framework.project import pipelines
from kedro.framework.startup import bootstrap_project
from kedro.io import DataCatalog, MemoryDataset

from covertype.settings import CONFIG_LOADER_ARGS
from covertype.stack.airflow import DAG_ID, DAGS_FOLDER, airflow_environment, create_dag_command, dag_queues
from tests.conftest import PROJECT_ROOT

DAG_FILE = DAGS_FOLDER / "covertype_dag.py"

# Run in a separate interpreter: importing Airflow configures its settings and logging for the process.
DESCRIBE_DAG = """
import json, sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags.get(sys.argv[2])
print(json.dumps({
    "import_errors": bag.import_errors,
    "schedule": dag.schedule,
    "catchup": dag.catchup,
    "max_active_runs": dag.max_active_runs,
    "max_consecutive_failed_dag_runs": dag.max_consecutive_failed_dag_runs,
    "tags": sorted(dag.tags),
    "tasks": [
        {
            "task_id": task.task_id,
            "upstream": sorted(task.upstream_task_ids),
            "queue": task.queue,
            "owner": task.owner,
            "retries": task.retries,
            "retry_delay_seconds": task.retry_delay.total_seconds(),
            "execution_timeout_seconds": task.execution_timeout.total_seconds(),
        }
        for task in dag.topological_sort()
    ],
}))
"""

# Imports the DAG file as a module and asks its tasks' first check whether they would run a Kedro environment.
CHECK_STORES = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("covertype_dag", sys.argv[1])
dag_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dag_module)
try:
    dag_module.refuse_stores_of_one_machine(sys.argv[2])
except dag_module.AirflowFailException as refusal:
    print("refused:", refusal)
else:
    print("accepted")
"""


@pytest.fixture(scope="module")
def settings() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "conf/base/airflow.yml").read_text())["default"]


@pytest.fixture(scope="module")
def dag(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The committed DAG as Airflow's DagBag loads it."""
    home = tmp_path_factory.mktemp("airflow_home")
    done = subprocess.run(
        [sys.executable, "-c", DESCRIBE_DAG, str(DAGS_FOLDER), DAG_ID],
        env={**os.environ, **airflow_environment(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def stages() -> list[str]:
    """The registered pipelines, each an Airflow task (`__default__` is their sum)."""
    bootstrap_project(PROJECT_ROOT)
    return sorted(name for name in pipelines if name != "__default__")


def test_the_dag_imports_without_errors(dag):
    assert dag["import_errors"] == {}


def test_every_registered_pipeline_is_one_task_chained_after_the_stages_it_reads_from(dag, stages):
    task_ids = [task["task_id"] for task in dag["tasks"]]
    assert sorted(task_ids) == stages, (
        "list new pipelines in `stages` of conf/base/airflow.yml, run `make dag`"
    )
    for position, task in enumerate(dag["tasks"]):
        assert task["upstream"] == task_ids[position - 1 : position], "one chain, one stage at a time"
    for consumer in task_ids:
        for producer in task_ids:
            if shared_datasets(producer, consumer):
                assert task_ids.index(producer) < task_ids.index(consumer), (producer, consumer)


@pytest.mark.parametrize("env", ["local", "stack"])
def test_stages_hand_data_to_each_other_only_through_persisted_catalog_datasets(stages, env):
    # The environment's catalog as a run builds it, without a session (whose kedro-mlflow hook would
    # set up MLflow tracking for this whole process).
    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), env=env, **CONFIG_LOADER_ARGS)
    catalog = DataCatalog.from_config(loader["catalog"], loader["credentials"])
    handed_over = {
        name for producer in stages for consumer in stages for name in shared_datasets(producer, consumer)
    }
    in_memory = {
        name for name in handed_over if name not in catalog or isinstance(catalog.get(name), MemoryDataset)
    }
    assert not in_memory, f"declare these in conf/{env} or conf/base catalogs: {sorted(in_memory)}"


def test_runs_every_5_minutes_one_at_a_time_without_catchup(dag):
    assert dag["schedule"] == "*/5 * * * *"
    assert dag["max_active_runs"] == 1
    assert dag["catchup"] is False
    assert dag["tags"] == ["covertype", "kedro"]


def test_the_dag_pauses_itself_after_the_configured_number_of_failed_runs_in_a_row(dag, settings):
    assert dag["max_consecutive_failed_dag_runs"] == settings["max_consecutive_failed_dag_runs"] == 3


def test_training_goes_to_its_own_queue_and_every_other_stage_to_the_default_one(dag, settings):
    queues = {task["task_id"]: task["queue"] for task in dag["tasks"]}
    assert queues == {
        "ingestion": "default",
        "monitoring": "default",
        "feature_engineering": "default",
        "training": "training",
    }
    assert dag_queues() == ["default", "training"], "the native workers listen on the DAG's queues"
    assert settings["default_queue"] == "default"


@pytest.mark.parametrize(
    ("executor", "kedro_env", "outcome"),
    [
        ("CeleryExecutor", "local", "refused"),
        ("airflow.providers.celery.executors.celery_executor.CeleryExecutor", "local", "refused"),
        ("CeleryExecutor", "stack", "accepted"),
        ("LocalExecutor", "local", "accepted"),
    ],
)
def test_a_task_refuses_the_embedded_stores_when_it_may_run_on_another_machine(
    executor, kedro_env, outcome, tmp_path
):
    done = subprocess.run(
        [sys.executable, "-c", CHECK_STORES, str(DAG_FILE), kedro_env],
        env={
            **os.environ,
            **airflow_environment(tmp_path, settings={"AIRFLOW__CORE__EXECUTOR": executor}),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = done.stdout.strip().splitlines()[-1]
    assert answer.split(":")[0] == outcome
    if outcome == "refused":
        assert f"Kedro environment {kedro_env!r}" in answer and "KEDRO_ENV to stack" in answer


def test_tasks_retry_after_a_delay_and_time_out(dag):
    for task in dag["tasks"]:
        assert task["owner"] == "covertype"
        assert task["retries"] == 2 and task["retry_delay_seconds"] == 60
        assert task["execution_timeout_seconds"] == 30 * 60


def test_the_stage_list_in_the_settings_is_what_the_dag_runs(dag, settings):
    assert settings["stages"] == [task["task_id"] for task in dag["tasks"]]


def test_the_committed_dag_is_what_kedro_airflow_generates_now(tmp_path):
    subprocess.run(
        create_dag_command(tmp_path), cwd=PROJECT_ROOT, check=True, capture_output=True, timeout=300
    )
    generated = (tmp_path / DAG_FILE.name).read_text()
    assert generated == DAG_FILE.read_text(), "airflow_dags/ is stale: run `make dag` and commit it"


def shared_datasets(producer: str, consumer: str) -> set[str]:
    """Datasets ``producer`` writes and ``consumer`` reads (transcoded names compared by base name)."""
    if producer == consumer:
        return set()
    written = {name.split("@")[0] for name in pipelines[producer].all_outputs()}
    return {name for name in pipelines[consumer].inputs() if name.split("@")[0] in written}
