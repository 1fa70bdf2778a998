"""Fixtures shared by the whole suite: real services started once per session, stopped by PID."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pymysql
import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

from covertype.data.convert import one_hot_to_api
from covertype.data.source import load_covertype
from covertype.stack.processes import ServiceProcess, free_port
from covertype.stack.services import batch_api, ensure_local_mariadb

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def api_rows() -> list[list[str]]:
    """The shipped sample in the batch API's 13-string form."""
    return one_hot_to_api(load_covertype("sample")).to_numpy().tolist()


@pytest.fixture(scope="session")
def mariadb() -> str:
    """The machine's MariaDB (started if it is down): a SQLAlchemy URL without a database."""
    ensure_local_mariadb()
    return "mysql+pymysql://root:@127.0.0.1:3306"


@pytest.fixture
def mysql_url(mariadb: str) -> Iterator[str]:
    """A fresh MySQL database for one test, dropped afterwards."""
    name = f"covertype_test_{uuid.uuid4().hex[:12]}"
    connection = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    try:
        connection.cursor().execute(f"CREATE DATABASE {name}")
        yield f"{mariadb}/{name}"
    finally:
        connection.cursor().execute(f"DROP DATABASE IF EXISTS {name}")
        connection.close()


@pytest.fixture
def start_batch_api(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start real batch API processes (uvicorn) serving whole batches; all are stopped after the test."""
    started: list[ServiceProcess] = []

    def start(min_update_seconds: float = 300, seed: int = 7) -> str:
        port = free_port()
        workdir = tmp_path / f"batch_api_{port}"
        started.append(
            batch_api(port, workdir, min_update_seconds, rows_per_request="all", seed=seed).start()
        )
        return f"http://127.0.0.1:{port}"

    yield start
    for service in started:
        service.stop()


@pytest.fixture
def running_batch_api(start_batch_api: Callable[..., str]) -> str:
    """A real batch API whose batch does not rotate during a test."""
    return start_batch_api()
