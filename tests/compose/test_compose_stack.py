"""`docker compose up` of the full stack, checked the way its user relies on it, in the order a user meets it.

The tests of this module share one running stack and build on each other (the first DAG run makes
the champion the service then answers from); they run in file order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import botocore.config
import botocore.exceptions
import httpx
import pymysql
import pytest
from mlflow import MlflowClient
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from covertype.stack.airflow import DAG_ID
from covertype.stack.compose import stack_health
from covertype.stack.probe import State, probe
from tests.compose.conftest import ComposeStack, free_ports_above_20000
from tests.conftest import RECORD, build_bento

# Building every image and starting the stack happen in the first test's setup (minutes on 2 cores).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]


class Airflow:
    """Airflow's REST API as the admin of the stack's .env."""

    def __init__(self, stack: ComposeStack) -> None:
        self.url = stack.url("AIRFLOW_PORT")
        login = {"username": "admin", "password": stack.settings["AIRFLOW_ADMIN_PASSWORD"]}
        token = httpx.post(f"{self.url}/auth/token", json=login, timeout=60).raise_for_status().json()
        self.headers = {"Authorization": f"Bearer {token['access_token']}"}

    def get(self, path: str) -> dict:
        return (
            httpx.get(f"{self.url}/api/v2{path}", headers=self.headers, timeout=60).raise_for_status().json()
        )

    def trigger(self) -> str:
        run = httpx.post(
            f"{self.url}/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": {}},
            headers=self.headers, timeout=60,
        ).raise_for_status()  # fmt: skip
        return run.json()["dag_run_id"]

    def wait_until_idle(self, timeout: float = 900) -> None:
        """Until no run of the DAG is queued or running."""

        def busy() -> int:
            query = f"/dags/{DAG_ID}/dagRuns?state=queued&state=running"
            return self.get(query)["total_entries"]

        Retrying(stop=stop_after_delay(timeout), wait=wait_fixed(5), retry=retry_if_result(bool))(busy)

    def finished_run(self, run_id: str | None = None, timeout: float = 900) -> dict:
        """The run (else the first run of the DAG) once it has finished, successfully or not."""

        def run() -> dict | None:
            runs = self.get(f"/dags/{DAG_ID}/dagRuns?order_by=logical_date")["dag_runs"]
            wanted = [found for found in runs if run_id in (None, found["dag_run_id"])][:1]
            return wanted[0] if wanted else None

        waiting = Retrying(
            stop=stop_after_delay(timeout), wait=wait_fixed(5),
            retry=retry_if_result(lambda found: found is None or found["state"] not in ("success", "failed")),
        )  # fmt: skip
        return waiting(run)

    def task_hosts(self, run_id: str) -> dict[str, str]:
        instances = self.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {instance["task_id"]: instance["hostname"] for instance in instances}


@pytest.fixture(scope="module")
def mlflow_login(compose_stack: ComposeStack) -> Iterator[None]:
    """The MLflow client logs in with the .env's admin (MLflow reads the login from the environment)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_USERNAME", compose_stack.settings["MLFLOW_ADMIN_USER"])
        patch.setenv("MLFLOW_TRACKING_PASSWORD", compose_stack.settings["MLFLOW_ADMIN_PASSWORD"])
        yield


def mlflow_client(stack: ComposeStack) -> MlflowClient:
    url = stack.url("MLFLOW_PORT")
    return MlflowClient(tracking_uri=url, registry_uri=url)


def raw_rows(stack: ComposeStack) -> int:
    connection = pymysql.connect(
        host="127.0.0.1", port=int(stack.settings["MYSQL_PORT"]), user=stack.settings["MYSQL_USER"],
        password=stack.settings["MYSQL_PASSWORD"], database=stack.settings["MYSQL_DATABASE"],
    )  # fmt: skip
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM raw_covertype")
        return cursor.fetchone()[0]


def s3(stack: ComposeStack, signed: bool = True):
    keys = {
        "aws_access_key_id": stack.settings["MINIO_ROOT_USER"],
        "aws_secret_access_key": stack.settings["MINIO_ROOT_PASSWORD"],
    }
    config = None if signed else botocore.config.Config(signature_version=botocore.UNSIGNED)
    return boto3.client(
        "s3", endpoint_url=stack.url("MINIO_PORT"), region_name="us-east-1", config=config,
        **(keys if signed else {}),
    )  # fmt: skip


def worker_containers(stack: ComposeStack) -> dict[str, str]:
    """Each airflow-worker container's hostname (what Airflow records a task ran on) and its id."""
    lines = stack.compose("ps", "--format", "json", "airflow-worker").stdout.splitlines()
    ids = [json.loads(line)["ID"] for line in lines]
    return {stack.docker("inspect", "--format", "{{.Config.Hostname}}", id_).strip(): id_ for id_ in ids}


def check_stack(stack: ComposeStack) -> subprocess.CompletedProcess:
    """`covertype-stack check` (make check-stack) as a user runs it, pointed at this compose project."""
    files = f"{stack.command[stack.command.index('-f') + 1]}:{stack.command[-1]}"
    env = {
        **os.environ, **stack.environ, "COMPOSE_PROJECT_NAME": stack.project, "COMPOSE_FILE": files,
        "COMPOSE_ENV_FILES": str(stack.env_file), "COLUMNS": "200",
    }  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "covertype.stack.compose", "check"], env=env, capture_output=True, text=True,
        check=False,
    )  # fmt: skip


def test_every_service_is_up_and_every_init_job_has_finished(compose_stack):
    rows = stack_health(compose_stack.command, compose_stack.environ)
    assert {row.service for row in rows} == set(compose_stack.services())
    assert [row for row in rows if row.state is not State.UP] == []
    init_jobs = {row.service: row.reason for row in rows if row.service.endswith("-init")}
    assert init_jobs == {"minio-init": "finished (exit 0)", "airflow-init": "finished (exit 0)"}
    report = check_stack(compose_stack)
    assert report.returncode == 0, report.stdout + report.stderr
    assert "airflow-worker" in report.stdout and "down" not in report.stdout


def test_every_service_another_machine_could_reach_refuses_a_client_without_credentials(
    compose_stack, mlflow_login
):
    with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
        pymysql.connect(
            host="127.0.0.1", port=int(compose_stack.settings["MYSQL_PORT"]),
            user=compose_stack.settings["MYSQL_USER"], password="",
        )  # fmt: skip
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        s3(compose_stack, signed=False).list_buckets()
    mlflow_api = f"{compose_stack.url('MLFLOW_PORT')}/api/2.0/mlflow/registered-models/search"
    assert httpx.get(mlflow_api, timeout=30).status_code == 401
    assert httpx.get(f"{compose_stack.url('AIRFLOW_PORT')}/api/v2/dags", timeout=30).status_code == 401
    redis_without_password = "import redis; redis.Redis(host='redis').ping()"
    refused = subprocess.run(
        [*compose_stack.command, "exec", "-T", "airflow-worker", "python", "-c", redis_without_password],
        env={**os.environ, **compose_stack.environ}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "redis.exceptions.AuthenticationError" in refused.stderr
    # With the .env's credentials, each answers.
    assert s3(compose_stack).list_buckets()["Buckets"]
    assert mlflow_client(compose_stack).search_registered_models() is not None


def test_the_scheduled_dag_run_collects_a_batch_builds_features_trains_and_promotes_on_a_worker_container(
    compose_stack, mlflow_login
):
    airflow = Airflow(compose_stack)
    run = airflow.finished_run()
    assert run["state"] == "success", run
    assert set(airflow.task_hosts(run["dag_run_id"]).values()) <= set(worker_containers(compose_stack))
    assert raw_rows(compose_stack) > 0
    features = s3(compose_stack).list_objects_v2(Bucket=compose_stack.settings["FEATURES_BUCKET"])
    assert {"features_train.parquet", "features_test.parquet"} <= {
        item["Key"] for item in features["Contents"]
    }
    client = mlflow_client(compose_stack)
    champion = client.get_model_version_by_alias("covertype", "champion")
    artifacts = s3(compose_stack).list_objects_v2(Bucket=compose_stack.settings["MLFLOW_BUCKET"])
    assert any(champion.run_id in item["Key"] or "models" in item["Key"] for item in artifacts["Contents"])


def test_the_service_answers_from_the_champion_and_reloads_to_a_new_one(compose_stack, mlflow_login):
    service = compose_stack.url("BENTOML_PORT")
    httpx.post(f"{service}/reload", json={}, timeout=120).raise_for_status()
    client = mlflow_client(compose_stack)
    champion = client.get_model_version_by_alias("covertype", "champion")
    assert httpx.post(f"{service}/model_info", json={}, timeout=60).json()["version"] == str(champion.version)
    answer = (
        httpx.post(f"{service}/predict", json={"records": [RECORD]}, timeout=60).raise_for_status().json()
    )
    assert answer[0]["model_version"] == str(champion.version) and 1 <= answer[0]["cover_type"] <= 7
    # A second version of the same model (the server's own copy: it refuses a hand-made source).
    new = client.copy_model_version(f"models:/covertype/{champion.version}", "covertype")
    for name, value in champion.tags.items():
        client.set_model_version_tag("covertype", new.version, name, value)
    client.set_registered_model_alias("covertype", "champion", new.version)
    reloaded = httpx.post(f"{service}/reload", json={}, timeout=120).raise_for_status().json()
    assert reloaded["serving"]["version"] == str(new.version), reloaded


def test_the_app_serves_its_pages_and_shows_every_service_up_on_the_control_page(
    compose_stack, chromium, tmp_path
):
    chromium.get(f"{compose_stack.url('STREAMLIT_PORT')}/control")
    wait = WebDriverWait(chromium, 120)
    wait.until(
        expected_conditions.text_to_be_present_in_element(
            (By.TAG_NAME, "body"), "Every configured service answers its health check"
        )
    )
    screenshot = tmp_path / "compose_control_page.png"
    assert chromium.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
    print(f"screenshot: {screenshot}")


def test_prometheus_scrapes_the_service(compose_stack):
    query = f"{compose_stack.url('PROMETHEUS_PORT')}/api/v1/query"

    def service_up() -> bool:
        results = httpx.get(query, params={"query": 'up{job="bentoml"}'}, timeout=30).json()["data"]["result"]
        return any(result["value"][1] == "1" for result in results)

    Retrying(stop=stop_after_delay(120), wait=wait_fixed(3), retry=retry_if_result(lambda up: not up))(
        service_up
    )


def test_an_added_worker_takes_the_tasks_of_a_run_triggered_through_the_rest_api(compose_stack):
    airflow = Airflow(compose_stack)
    [(first, first_container)] = worker_containers(compose_stack).items()
    compose_stack.compose("up", "-d", "--wait", "--scale", "airflow-worker=2", "airflow-worker")
    added = set(worker_containers(compose_stack)) - {first}
    assert len(added) == 1
    # With the first worker stopped, only the added one can take the run's tasks; it stops between
    # two scheduled runs, so none of theirs is cut short.
    airflow.wait_until_idle()
    compose_stack.docker("stop", first_container)
    try:
        run_id = airflow.trigger()
        run = airflow.finished_run(run_id, timeout=1200)
    finally:
        compose_stack.docker("start", first_container)
    assert run["state"] == "success", run
    assert set(airflow.task_hosts(run_id).values()) == added


def test_the_containerized_bento_answers_from_the_stacks_registry(compose_stack, mlflow_login, tmp_path):
    """`make bento`, then `bentoml containerize` (this engine has no buildx: the classic builder), run on
    the stack's network with the registry's address and login: it serves the champion."""
    bentoml_home = tmp_path / "bentoml"
    bento = build_bento(bentoml_home)
    image = f"{compose_stack.project}-bento:{bento.name}"
    env = {**os.environ, **compose_stack.environ, "BENTOML_HOME": str(bentoml_home), "DOCKER_BUILDKIT": "0"}
    containerize = subprocess.run(
        [str(Path(sys.executable).with_name("bentoml")), "containerize", f"covertype:{bento.name}",
         "--image-tag", image],
        env=env, capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    assert containerize.returncode == 0, containerize.stdout[-3000:] + containerize.stderr[-3000:]
    (port,) = free_ports_above_20000(1)
    settings = compose_stack.settings
    login = {
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "MLFLOW_TRACKING_USERNAME": settings["MLFLOW_ADMIN_USER"],
        "MLFLOW_TRACKING_PASSWORD": settings["MLFLOW_ADMIN_PASSWORD"],
    }
    container = compose_stack.docker(
        "run", "--detach", "--network", f"{compose_stack.project}_default",
        "--publish", f"127.0.0.1:{port}:3000",
        *(flag for name, value in login.items() for flag in ("--env", f"{name}={value}")), image, "serve",
    ).strip()  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        Retrying(stop=stop_after_delay(240), wait=wait_fixed(2), retry=retry_if_result(lambda up: not up))(
            lambda: probe(f"{url}/readyz").up
        )
        answer = (
            httpx.post(f"{url}/predict", json={"records": [RECORD]}, timeout=60).raise_for_status().json()
        )
        champion = mlflow_client(compose_stack).get_model_version_by_alias("covertype", "champion")
        assert answer[0]["model_version"] == str(champion.version)
    finally:
        compose_stack.docker("rm", "--force", container)
        compose_stack.docker("rmi", image)


def test_the_stack_check_says_which_service_is_stopped(compose_stack):
    compose_stack.compose("stop", "streamlit")
    report = check_stack(compose_stack)
    assert report.returncode == 1
    streamlit_row = next(line for line in report.stdout.splitlines() if "streamlit" in line)
    assert "down" in streamlit_row and "exited" in streamlit_row


def test_down_then_up_keeps_every_row_run_version_and_the_champion(compose_stack, mlflow_login):
    # Nothing writes while the state is counted: the scheduler and the workers stop first.
    compose_stack.compose("stop", *(name for name in compose_stack.services() if name.startswith("airflow-")))
    client = mlflow_client(compose_stack)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    before = (
        raw_rows(compose_stack),
        len(client.search_runs(experiments, max_results=1000)),
        len(client.search_model_versions("name='covertype'")),
        client.get_model_version_by_alias("covertype", "champion").version,
    )
    compose_stack.compose("--profile", "*", "down")
    compose_stack.compose("up", "-d", "--wait", "mlflow")
    client = mlflow_client(compose_stack)
    after = (
        raw_rows(compose_stack),
        len(client.search_runs(experiments, max_results=1000)),
        len(client.search_model_versions("name='covertype'")),
        client.get_model_version_by_alias("covertype", "champion").version,
    )
    assert after == before


def test_down_with_volumes_leaves_nothing_behind(compose_stack):
    compose_stack.compose("--profile", "*", "down", "-v", "--remove-orphans")
    label = f"label=com.docker.compose.project={compose_stack.project}"
    assert compose_stack.docker("ps", "--all", "--quiet", "--filter", label).strip() == ""
    assert compose_stack.docker("network", "ls", "--quiet", "--filter", label).strip() == ""
    assert compose_stack.docker("volume", "ls", "--quiet", "--filter", label).strip() == ""
