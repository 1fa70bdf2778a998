"""`make stack` without Docker: every service up and healthy, one full cycle through it, clean stop."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator

import httpx
import pymysql
import pytest

from covertype.stack.airflow import DAG_ID, admin_password
from covertype.stack.native import StackLayout, check, down, up
from covertype.stack.probe import State, probe
from covertype.stack.storage import GRPC_OFFSET, port_is_free
from tests.conftest import RECORD

pytestmark = pytest.mark.integration


def ports_below_the_ephemeral_range(count: int) -> list[int]:
    """Distinct free ports in 20000-22767, each with its port + 10000 free too (SeaweedFS's gRPC).

    Services that pick their own ports (SeaweedFS's master, volume and filer) take them from the
    kernel's ephemeral range (32768+), so they cannot take one of these before its service starts.
    """
    ports: list[int] = []
    for candidate in random.sample(range(20_000, 22_768), 400):
        if all(port_is_free(port) for port in (candidate, candidate + GRPC_OFFSET)):
            ports.append(candidate)
        if len(ports) == count:
            return ports
    raise RuntimeError("not enough free ports in 20000-22767")


@pytest.fixture(scope="module")
def native_stack(tmp_path_factory, mariadb) -> Iterator[StackLayout]:
    """The whole native stack on free ports, with databases of its own, started as `make stack` does."""
    suffix = uuid.uuid4().hex[:8]
    batch_api_port, s3_port, mlflow_port, bentoml_port, streamlit_port, airflow_port = (
        ports_below_the_ephemeral_range(6)
    )
    layout = StackLayout(
        workdir=tmp_path_factory.mktemp("stack"),
        batch_api_port=batch_api_port,
        s3_port=s3_port,
        mlflow_port=mlflow_port,
        bentoml_port=bentoml_port,
        streamlit_port=streamlit_port,
        airflow_port=airflow_port,
        mysql_database=f"covertype_stack_{suffix}",
        mlflow_database=f"covertype_stack_mlflow_{suffix}",
        # The stack's real search budget is minutes; what this test checks needs one trial per family.
        first_cycle_params="training.search.trials_per_family=1,training.search.timeout_seconds=30",
    )
    try:
        assert up(layout, timeout=900) == 0, (layout.workdir / "supervisor.log").read_text()[-3000:]
        yield layout
    finally:
        down(layout)
        connection = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
        with connection:
            for database in (layout.mysql_database, layout.mlflow_database):
                connection.cursor().execute(f"DROP DATABASE IF EXISTS `{database}`")


def test_every_service_reports_up(native_stack, capsys):
    assert check(native_stack) == 0
    report = capsys.readouterr().out
    for service in ("mysql", "s3", "mlflow", "batch-api", "bentoml", "streamlit", "airflow"):
        assert service in report


def test_the_first_cycle_went_from_the_batch_api_to_a_served_champion(native_stack):
    connection = pymysql.connect(
        host="127.0.0.1", user="root", password="", database=native_stack.mysql_database
    )
    with connection:
        cursor = connection.cursor()
        cursor.execute("SELECT batch_number, COUNT(*) FROM raw_covertype GROUP BY batch_number")
        # Scheduled runs may add later batches; the first cycle stored batch 1, whole.
        assert (1, 1_500) in cursor.fetchall(), "batch 1 of the sample, whole, in MySQL"
    s3 = httpx.get(f"http://127.0.0.1:{native_stack.s3_port}/{native_stack.features_bucket}", timeout=10)
    assert s3.status_code == 403, "the features bucket exists and refuses anonymous reads"
    service = f"http://127.0.0.1:{native_stack.bentoml_port}"
    info = httpx.post(f"{service}/model_info", json={}, timeout=30).json()
    assert info["name"] == "covertype" and info["version"] == "1"
    answer = httpx.post(f"{service}/predict", json={"records": [RECORD]}, timeout=30)
    assert answer.status_code == 200
    assert 1 <= answer.json()[0]["cover_type"] <= 7


def test_the_scheduler_starts_the_dag_without_anyone_unpausing_it(native_stack):
    airflow = f"http://127.0.0.1:{native_stack.airflow_port}"
    login = {"username": "admin", "password": admin_password(native_stack.workdir / "airflow_home")}
    token = httpx.post(f"{airflow}/auth/token", json=login, timeout=30).json()["access_token"]
    with httpx.Client(base_url=airflow, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
        deadline = time.monotonic() + 300  # the DAG is parsed, then the scheduler's loop creates the run
        while not (runs := api.get(f"/api/v2/dags/{DAG_ID}/dagRuns").json()["dag_runs"]):
            assert time.monotonic() < deadline, api.get(f"/api/v2/dags/{DAG_ID}").text
            time.sleep(3)
        assert api.get(f"/api/v2/dags/{DAG_ID}").json()["is_paused"] is False
    assert runs[0]["run_type"] == "scheduled"


def test_stopping_the_stack_frees_every_port(native_stack):
    assert down(native_stack) == 0
    for url in native_stack.urls.values():
        assert probe(url, timeout=2).state is State.DOWN, url
