"""Fixtures shared by the whole suite: real services started once per session, stopped by PID."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest
import s3fs
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

from covertype.config import Settings
from covertype.data.convert import one_hot_to_api
from covertype.data.source import load_covertype
from covertype.paths import PROJECT_ROOT
from covertype.registry import TRAINING_ROWS_TAG, ModelRegistry
from covertype.serving.engine import ENGINE_TAG
from covertype.serving.schema import EXAMPLE_RECORD
from covertype.stack import storage
from covertype.stack.buckets import ensure_buckets
from covertype.stack.processes import ServiceProcess, free_port
from covertype.stack.services import batch_api, ensure_local_mariadb
from covertype.stack.serving import bentoml_service
from tests.kedro_process import KedroRun, run_in_own_process

#: The valid record the tests send (the schema's example).
RECORD = EXAMPLE_RECORD
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def conf_variables(*envs: str) -> set[str]:
    """The environment variables the Kedro configuration of ``envs`` reads (``oc.env``)."""
    files = [path for env in envs for path in (PROJECT_ROOT / "conf" / env).glob("*.yml")]
    return {name for path in files for name in re.findall(r"oc\.env:(\w+)", path.read_text())}


def kedro_run(
    env: str,
    pipelines: list[str] | None = None,
    runtime_params: dict[str, object] | None = None,
    *,
    environ: dict[str, str] | None = None,
    cwd: Path = PROJECT_ROOT,
) -> None:
    """One Kedro session, as `kedro run --env <env> --pipelines ... --params ...` runs it, in ``cwd``
    (MLflow's embedded store keeps its artifacts there), in a process of its own: kedro-mlflow's
    process-wide MLflow state (tracking URI, active run and experiment, its hook's last run id) ends
    with it instead of leaking into tests. The process is forked with the libraries already imported."""
    environment = {**os.environ, **(environ or {})}
    exit_code, output = run_in_own_process(
        KedroRun(PROJECT_ROOT, env, pipelines, runtime_params, environment, cwd)
    )
    assert exit_code == 0, f"kedro run {pipelines} failed (exit {exit_code}):\n{output[-6000:]}"


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
    """Start real batch API processes (uvicorn), serving whole batches by default; all stopped afterwards.

    ``rows_per_request="course"`` serves a random tenth of the batch per call, as the course's API does.
    """
    started: list[ServiceProcess] = []

    def start(
        min_update_seconds: float = 300,
        seed: int = 7,
        rows_per_request: str = "all",
        source: str | None = None,
        rows: int | None = None,
    ) -> str:
        port = free_port()
        workdir = tmp_path / f"batch_api_{port}"
        api = batch_api(
            port,
            workdir,
            min_update_seconds,
            rows_per_request=rows_per_request,
            seed=seed,
            source=source,
            rows=rows,
        )
        started.append(api.start())
        return f"http://127.0.0.1:{port}"

    yield start
    for service in started:
        service.stop()


@pytest.fixture
def running_batch_api(start_batch_api: Callable[..., str]) -> str:
    """A real batch API whose batch does not rotate during a test."""
    return start_batch_api()


@dataclass(frozen=True)
class TrainedProject:
    """A temporary project state made by the project's own pipelines: raw store, MLflow registry."""

    workdir: Path
    env: dict[str, str]  # MLFLOW_TRACKING_URI, COVERTYPE_RAW_STORE_URL, COVERTYPE_DATA_DIR of that state


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainedProject]:
    """Two batches collected from a real batch API, then feature engineering and training, once per session.

    The stores and the feature and report files go to a temporary folder (the environment moves
    them; MLflow's artifacts follow the working directory); the one file Kedro writes into the
    project, the ingestion summary, is put back as it was. Each run is a process of its own.
    """
    workdir = tmp_path_factory.mktemp("trained_project")
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{workdir}/mlflow.db",
        "COVERTYPE_RAW_STORE_URL": f"sqlite:///{workdir}/raw.db",
        "COVERTYPE_DATA_DIR": str(workdir / "data"),
    }
    summary = PROJECT_ROOT / "data/08_reporting/ingestion_summary.json"
    saved_summary = summary.read_bytes() if summary.exists() else None
    rotation_seconds, port = 3.0, free_port()
    try:
        with batch_api(port, workdir, rotation_seconds, rows_per_request="all", seed=11):
            for batch in range(2):
                if batch:
                    time.sleep(rotation_seconds)  # the next batch is served once the window has passed
                kedro_run(
                    "local", ["ingestion"], {"batch_api_url": f"http://127.0.0.1:{port}"},
                    environ=env, cwd=workdir,
                )  # fmt: skip
            kedro_run("local", ["feature_engineering", "training"], environ=env, cwd=workdir)
    finally:
        if saved_summary is None:
            summary.unlink(missing_ok=True)
        else:
            summary.write_bytes(saved_summary)
    yield TrainedProject(workdir=workdir, env=env)


@dataclass(frozen=True)
class TwoVersions:
    """The trained project's champion and a second registered version, the challenger."""

    champion: str
    challenger: str


@pytest.fixture(scope="session")
def two_versions(trained_project: TrainedProject) -> TwoVersions:
    """A second version of the trained champion's model registered as the challenger, once per session:
    version selection needs a version that is not the champion (the same model: no second training)."""
    uri = trained_project.env["MLFLOW_TRACKING_URI"]
    registry = ModelRegistry.from_settings(Settings(tracking_uri=uri))
    champion = registry.champion()
    assert champion is not None, "the trained project's pipeline promotes its first version"
    # The same artifacts, so the same converted model and the engine tags that say it serves.
    tags = {
        name: value
        for name, value in champion.tags.items()
        if name == TRAINING_ROWS_TAG or name.startswith(ENGINE_TAG)
    }
    second = registry.client.create_model_version(
        registry.model_name, source=champion.source, run_id=champion.run_id, tags=tags
    )
    registry.client.set_registered_model_alias(registry.model_name, registry.challenger_alias, second.version)
    return TwoVersions(champion=str(champion.version), challenger=str(second.version))


@pytest.fixture(scope="session")
def champion_service(trained_project: TrainedProject, two_versions: TwoVersions) -> Iterator[str]:
    """A real `bentoml serve` of the trained project's champion, started once per session: its URL.

    The challenger is registered first, so the champion's aliases are current from the start.
    """
    port = free_port()
    # The tests move the alias themselves and reload on request; the watcher is tested in-process.
    env = {**trained_project.env, "COVERTYPE_CHAMPION_POLL_SECONDS": "0"}
    with bentoml_service(port, trained_project.workdir / "bentoml", env):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def service_without_champion(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `bentoml serve` started before anything was trained (an empty registry): its URL."""
    workdir = tmp_path_factory.mktemp("service_without_champion")
    port = free_port()
    with bentoml_service(port, workdir, {"MLFLOW_TRACKING_URI": f"sqlite:///{workdir}/mlflow.db"}):
        yield f"http://127.0.0.1:{port}"


@dataclass(frozen=True)
class S3Server:
    """A running S3 endpoint and the keys it accepts."""

    endpoint_url: str
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        """The variables the `stack` environment, s3fs and the MLflow server read."""
        return {
            "S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def filesystem(self) -> s3fs.S3FileSystem:
        return s3fs.S3FileSystem(
            key=self.access_key, secret=self.secret_key, client_kwargs={"endpoint_url": self.endpoint_url}
        )


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3 server (SeaweedFS) on free ports, started once per session, stopped by PID."""
    port, _ = storage.free_port_pair()
    server = S3Server(f"http://127.0.0.1:{port}", "covertype-tests", uuid.uuid4().hex)
    with storage.seaweedfs(port, tmp_path_factory.mktemp("seaweedfs"), server.access_key, server.secret_key):
        yield server


@pytest.fixture(scope="session")
def mlflow_server(
    mariadb: str, s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real `mlflow server` (MariaDB backend store, artifacts in S3) once per session: its tracking URI."""
    database, bucket = f"covertype_mlflow_{uuid.uuid4().hex[:12]}", "mlflow-artifacts"
    connection = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    try:
        connection.cursor().execute(f"CREATE DATABASE {database}")
        ensure_buckets([bucket], s3_server.filesystem())
        port = free_port()
        with storage.mlflow_server(
            port,
            tmp_path_factory.mktemp("mlflow_server"),
            backend_store_uri=f"{mariadb}/{database}",
            artifacts_destination=f"s3://{bucket}/",
            env=s3_server.env(),
        ):
            yield f"http://127.0.0.1:{port}"
    finally:
        connection.cursor().execute(f"DROP DATABASE IF EXISTS {database}")
        connection.close()


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Headless Chromium through the Debian chromedriver: nothing is downloaded."""
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), "make test installs chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1400,900",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def build_bento(bentoml_home: Path) -> Path:
    """`make bento` with its bentos in ``bentoml_home``: the bento's folder."""
    env = {**os.environ, "BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "True"}
    build = subprocess.run(
        ["make", "--no-print-directory", "bento"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    # The version folder; `latest` is a file naming it (a version may start with "l" too).
    (bento,) = [path for path in (bentoml_home / "bentos" / "covertype").iterdir() if path.name != "latest"]
    return bento
