"""A fresh clone's first commands: each failure a newcomer meets ends in one line that says what to run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kedro.framework.cli.utils import find_run_command
from kedro.io import DatasetError
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from covertype import cli as covertype_cli
from covertype.datasets import SQLAppendDataset
from covertype.first_run import PortInUse, ensure_port_free, explain
from covertype.paths import PROJECT_ROOT
from covertype.stack.processes import free_port

BIN = Path(sys.executable).parent


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


def test_kedro_run_without_a_batch_api_ends_in_one_line_naming_the_url_variable_and_commands(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    environment = {
        **os.environ,
        # The run's stores in the test's folder, not the checkout's.
        "COVERTYPE_DATA_DIR": str(tmp_path),
        "COVERTYPE_RAW_STORE_URL": f"sqlite:///{tmp_path}/raw.db",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
        "COVERTYPE_BATCH_API_URL": url,
    }
    run = subprocess.run(
        [str(BIN / "kedro"), "run", "--pipelines", "ingestion"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )

    assert run.returncode == 1
    assert "Traceback" not in run.stderr and "Traceback" not in run.stdout
    line = last_line(run.stderr)
    assert line.startswith(f"Error: No batch API answers at {url}")
    for remedy in ("COVERTYPE_BATCH_API_URL", "`uv run covertype-batch-api`", "`make demo`"):
        assert remedy in line
    assert "Retrying" not in run.stderr and "retry" not in run.stderr  # refused at once, not retried


def test_no_mysql_for_the_stack_environment_is_explained_in_one_line():
    raw = SQLAppendDataset(
        table_name="raw_covertype",
        credentials={"con": f"mysql+pymysql://root:@127.0.0.1:{free_port()}/covertype"},
    )
    with pytest.raises(DatasetError) as refused:
        raw.load()

    message = explain(refused.value)
    assert message is not None and "\n" not in message
    assert message.startswith("MySQL does not answer (Can't connect to MySQL server on '127.0.0.1'")
    for remedy in ("`docker compose up -d`", "MYSQL_HOST", "MYSQL_PORT", ".env.example", "drop --env stack"):
        assert remedy in message


def test_no_mlflow_server_for_the_stack_environment_is_explained_in_one_line(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow's own retries take minutes
    server = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(MlflowException) as refused:
        MlflowClient(tracking_uri=server).get_experiment_by_name("covertype")

    message = explain(refused.value)
    assert message is not None and "\n" not in message
    assert message.startswith(f"No MLflow server answers at {server}:")
    for remedy in ("`docker compose up -d`", "MLFLOW_TRACKING_URI", "drop --env stack"):
        assert remedy in message


def test_an_error_without_a_first_run_cause_keeps_its_traceback():
    assert explain(ValueError("a bug")) is None


def test_a_port_in_use_is_named_with_how_to_choose_another(taken_port):
    with pytest.raises(
        PortInUse, match=rf"Port {taken_port} on 127.0.0.1 is already in use.*SERVE_PORT=3001"
    ):
        ensure_port_free("127.0.0.1", taken_port, "make serve SERVE_PORT=3001")


def test_make_serves_port_check_prints_one_line_and_fails(taken_port):
    check = subprocess.run(
        [
            sys.executable,
            "-m",
            "covertype.first_run",
            "127.0.0.1",
            str(taken_port),
            "make serve SERVE_PORT=3001",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 1
    assert check.stderr.strip() == (
        f"Error: Port {taken_port} on 127.0.0.1 is already in use (another program, or this service "
        "started earlier): stop it, or use another port: make serve SERVE_PORT=3001"
    )
    free = subprocess.run(
        [sys.executable, "-m", "covertype.first_run", "127.0.0.1", str(free_port()), "x"], check=False
    )
    assert free.returncode == 0


def test_the_batch_api_on_a_port_in_use_says_so_before_loading_its_rows(taken_port):
    start = subprocess.run(
        [str(BIN / "covertype-batch-api"), "--port", str(taken_port)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert start.returncode == 1
    assert last_line(start.stderr) == (
        f"Error: Port {taken_port} on 127.0.0.1 is already in use (another program, or this service "
        "started earlier): stop it, or use another port: --port N (or COVERTYPE_API_PORT)"
    )
    assert "Serving" not in start.stderr


def test_python_m_covertype_runs_the_same_explaining_run_command():
    assert find_run_command("covertype") is covertype_cli.run
