"""Scale-out with the CeleryExecutor, natively on this machine: one DAG run end to end on two workers.

The scheduler, the api-server, the dag-processor, the triggerer and two Celery workers (one on the
`default` queue, one on `training` only) share this machine's Redis (a database index of their own)
and PostgreSQL (a database of their own), both cleaned up afterwards. The tasks run in the Kedro
`stack` environment: raw data in MariaDB, features in the S3 server, models in the MLflow server.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import mlflow
import psycopg2
import pymysql
import pytest
import redis
from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from covertype.stack.airflow import (
    DAG_ID,
    SCHEDULING,
    admin_password,
    airflow_environment,
    airflow_services,
    create_dag_command,
    migrate,
)
from covertype.stack.processes import ServiceProcess, free_port
from covertype.stack.services import batch_api
from tests.conftest import PROJECT_ROOT, S3Server

pytestmark = pytest.mark.integration

POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
#: Worker name -> the queues it listens on: training goes to a worker of its own.
WORKERS = {"default": ["default"], "training": ["training"]}
#: The run's conf, passed to Kedro as runtime params: a small search, as in the stack cycle test.
SMALL_SEARCH = {"training": {"search": {"trials_per_family": 1, "max_rows": 1_000, "cv_folds": 2}}}
RUN_DEADLINE_SECONDS = 600


@dataclass(frozen=True)
class CeleryAirflow:
    """A running scale-out deployment: its api-server's URL, home, worker logs and MLflow server."""

    url: str
    home: Path
    worker_logs: dict[str, Path]
    tracking_uri: str

    def headers(self) -> dict[str, str]:
        login = {"username": "admin", "password": admin_password(self.home)}
        token = httpx.post(f"{self.url}/auth/token", json=login, timeout=30).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}


@contextlib.contextmanager
def redis_database() -> Iterator[str]:
    """An unused Redis database index of this machine's server for the broker, flushed afterwards.

    The index is claimed with a key set only if absent, so two runs at once never share a broker.
    """
    claim, token = "covertype-tests:scale-out-claim", uuid.uuid4().hex
    for index in range(15, 0, -1):
        database = redis.Redis(REDIS_HOST, REDIS_PORT, db=index)
        if database.set(claim, token, nx=True):
            if database.dbsize() == 1:
                break
            database.delete(claim)  # someone else's keys are there
    else:
        pytest.fail(f"every Redis database index of {REDIS_HOST}:{REDIS_PORT} is in use")
    try:
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{index}"
    finally:
        database.flushdb()


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A new PostgreSQL database for Airflow's metadata (and Celery's results), dropped afterwards."""
    name = f"airflow_scale_out_{uuid.uuid4().hex[:12]}"
    connection = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    connection.autocommit = True
    try:
        connection.cursor().execute(f"CREATE DATABASE {name}")
        yield f"{POSTGRES}/{name}"
    finally:
        connection.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.close()


@contextlib.contextmanager
def mysql_database() -> Iterator[str]:
    """A new database on this machine's MariaDB for the raw data, dropped afterwards: its name."""
    name = f"covertype_scale_out_{uuid.uuid4().hex[:12]}"
    connection = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    try:
        connection.cursor().execute(f"CREATE DATABASE {name}")
        yield name
    finally:
        connection.cursor().execute(f"DROP DATABASE IF EXISTS {name}")
        connection.close()


def project_copy(target: Path) -> subprocess.Popen:
    """Start writing a project folder with what the tasks read: pyproject.toml, conf/ and the DAG.

    The DAG is generated without a schedule (the test triggers its one run) and without retries.
    """
    target.mkdir()
    shutil.copy(PROJECT_ROOT / "pyproject.toml", target)
    shutil.copytree(PROJECT_ROOT / "conf", target / "conf")
    command = create_dag_command(target / "airflow_dags", params="retries=0,schedule=null")
    return subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def celery_airflow(
    mariadb: str, s3_server: S3Server, mlflow_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CeleryAirflow]:
    """The whole deployment, started once for the module and stopped by PID in reverse order."""
    workdir = tmp_path_factory.mktemp("celery_scale_out")
    project, home, port = workdir / "project", workdir / "airflow_home", free_port()
    generating_dag = project_copy(project)
    with contextlib.ExitStack() as running:
        broker_url = running.enter_context(redis_database())
        metadata_url = running.enter_context(postgres_database())
        raw_database = running.enter_context(mysql_database())
        celery = {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
            "AIRFLOW__CELERY__BROKER_URL": broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{metadata_url}",
            # Every process signs and checks the task tokens with the same secret.
            "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
            **SCHEDULING,
        }
        features_bucket = f"features-{uuid.uuid4().hex[:12]}"
        s3_server.filesystem().mkdir(features_bucket)
        api_port = free_port()
        running.enter_context(batch_api(api_port, workdir / "batch_api", rows_per_request="all", seed=5))
        env = {
            **airflow_environment(home, dags_folder=project / "airflow_dags", port=port, settings=celery),
            **s3_server.env(),
            "KEDRO_ENV": "stack",
            "COVERTYPE_BATCH_API_URL": f"http://127.0.0.1:{api_port}",
            "MYSQL_HOST": "127.0.0.1",
            "MYSQL_PORT": "3306",
            "MYSQL_USER": "root",
            "MYSQL_PASSWORD": "",
            "MYSQL_DATABASE": raw_database,
            "FEATURES_BUCKET": features_bucket,
            "MLFLOW_TRACKING_URI": mlflow_server,
            "COVERTYPE_DATA_DIR": str(workdir / "data"),
        }
        migrate(env, home / "logs" / "db-migrate.log")
        assert generating_dag.wait(timeout=300) == 0, generating_dag.stderr.read().decode()[-3000:]
        api_server, *others = airflow_services(env, home / "logs", workers=WORKERS)
        started = time.monotonic()
        running.enter_context(api_server)
        # The others wait only for the api-server: started together, stopped in reverse order.
        for service in others:
            running.callback(service.stop)
        with ThreadPoolExecutor(len(others)) as starting:
            list(starting.map(ServiceProcess.start, others))
        print(f"Airflow with 2 Celery workers ready in {time.monotonic() - started:.1f} s", file=sys.stderr)
        yield CeleryAirflow(
            url=f"http://127.0.0.1:{port}",
            home=home,
            worker_logs={name: home / "logs" / f"worker-{name}.log" for name in WORKERS},
            tracking_uri=mlflow_server,
        )


def wait_for(check, timeout: float, every: float = 2.0):
    """``check()``'s first truthy answer within ``timeout`` seconds (tenacity raises RetryError else)."""
    waiting = Retrying(
        stop=stop_after_delay(timeout), wait=wait_fixed(every), retry=retry_if_result(lambda a: not a)
    )
    return waiting(check)


def test_one_dag_run_succeeds_with_training_on_the_training_worker_and_leaves_a_champion(celery_airflow):
    client = mlflow.MlflowClient(tracking_uri=celery_airflow.tracking_uri)
    versions_before = len(client.search_model_versions("name = 'covertype'"))
    headers = celery_airflow.headers()
    api = f"{celery_airflow.url}/api/v2/dags/{DAG_ID}"

    def dag_is_parsed() -> bool:
        return httpx.get(api, headers=headers, timeout=30).status_code == 200

    wait_for(dag_is_parsed, timeout=120)
    triggered = httpx.post(
        f"{api}/dagRuns", headers=headers, json={"logical_date": None, "conf": SMALL_SEARCH}, timeout=30
    )
    assert triggered.status_code == 200, triggered.text
    run_id = triggered.json()["dag_run_id"]
    started = time.monotonic()

    def finished_state() -> str | None:
        state = httpx.get(f"{api}/dagRuns/{run_id}", headers=headers, timeout=30).json()["state"]
        return state if state in {"success", "failed"} else None

    state = wait_for(finished_state, timeout=RUN_DEADLINE_SECONDS)
    print(f"DAG run {run_id}: {state} {time.monotonic() - started:.1f} s after the trigger", file=sys.stderr)

    instances = httpx.get(f"{api}/dagRuns/{run_id}/taskInstances", headers=headers, timeout=30).json()
    tasks = {instance["task_id"]: instance for instance in instances["task_instances"]}
    logs = {name: path.read_text(errors="replace") for name, path in celery_airflow.worker_logs.items()}
    ran_on = {
        task_id: [worker for worker, log in logs.items() if instance["id"] in log]
        for task_id, instance in tasks.items()
    }
    for task_id, instance in sorted(tasks.items(), key=lambda item: item[1]["start_date"] or ""):
        print(
            f"  {task_id}: {instance['state']} on queue {instance['queue']}, worker {ran_on[task_id]}, "
            f"{instance['duration'] or 0:.1f} s",
            file=sys.stderr,
        )
    assert state == "success"
    assert {task_id: instance["state"] for task_id, instance in tasks.items()} == {
        "ingestion": "success",
        "monitoring": "success",
        "feature_engineering": "success",
        "training": "success",
    }
    # Each worker logs the workloads it received, named by the task instance's id.
    assert tasks["training"]["queue"] == "training"
    assert ran_on == {
        "ingestion": ["default"],
        "monitoring": ["default"],
        "feature_engineering": ["default"],
        "training": ["training"],
    }

    versions = client.search_model_versions("name = 'covertype'")
    assert len(versions) == versions_before + 1
    new = max(versions, key=lambda version: int(version.version))
    champion = client.get_model_version_by_alias("covertype", "champion")
    # The new version is the champion if it won the promotion (it does in an empty registry).
    assert (champion.version == new.version) == (new.tags["promotion_decision"] == "promoted")
    assert versions_before or champion.version == new.version
