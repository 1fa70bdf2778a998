"""``covertype-stack``: the docker-compose stack as native processes on one machine.

``up`` starts a supervisor in the background that brings the services up in dependency order
(MariaDB, S3, MLflow server, batch API, BentoML, Streamlit, Airflow), waits for each to be healthy,
and returns; ``down`` asks the supervisor to stop them in reverse order; ``check`` probes every
service and says why one is down. Clients get the addresses from ``<workdir>/stack.env``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pymysql
from rich.console import Console
from rich.table import Table

from covertype.config import Settings, load_settings
from covertype.paths import PROJECT_ROOT
from covertype.registry import ModelRegistry
from covertype.stack.airflow import (
    SCHEDULING,
    airflow_environment,
    airflow_services,
    migrate,
    wait_until_a_task_has_started,
)
from covertype.stack.buckets import ensure_buckets, s3_filesystem
from covertype.stack.probe import Health, State, service_health
from covertype.stack.processes import ServiceFailed, ServiceProcess
from covertype.stack.services import batch_api, ensure_local_mariadb
from covertype.stack.serving import bentoml_service, streamlit_ui
from covertype.stack.storage import mlflow_server, seaweedfs
from covertype.stack.topology import compose_topology

DEFAULT_WORKDIR = PROJECT_ROOT / ".stack"
#: The layout's fields that are settings of the same name: the MySQL server the stack uses.
MYSQL_SETTINGS = ("mysql_host", "mysql_port", "mysql_user", "mysql_password", "mysql_database")


def _published_port(service: str) -> int:
    """A field default: the host port docker-compose.yml publishes ``service`` on."""
    return field(default_factory=lambda: compose_topology().host_port(service))


@dataclass(frozen=True)
class StackLayout:
    """Where each native service listens and keeps its files; the ports default to compose's."""

    workdir: Path = DEFAULT_WORKDIR
    batch_api_port: int = _published_port("batch-api")
    s3_port: int = _published_port("minio")
    mlflow_port: int = _published_port("mlflow")
    bentoml_port: int = _published_port("bentoml")
    streamlit_port: int = _published_port("streamlit")
    airflow_port: int = _published_port("airflow-apiserver")
    mysql_host: str = Settings.model_fields["mysql_host"].default
    mysql_port: int = Settings.model_fields["mysql_port"].default
    mysql_user: str = Settings.model_fields["mysql_user"].default
    mysql_password: str = Settings.model_fields["mysql_password"].default
    mysql_database: str = Settings.model_fields["mysql_database"].default
    mlflow_database: str = "covertype_mlflow"
    features_bucket: str = "covertype-features"
    mlflow_bucket: str = "mlflow-artifacts"
    s3_access_key: str = "covertype"
    s3_secret_key: str = field(default="covertype-native-stack", repr=False)
    batch_rotation_seconds: float = Settings.model_fields["batch_rotation_seconds"].default
    with_airflow: bool = Settings.model_fields["stack_airflow"].default
    #: Extra ``kedro run --params`` for the first cycle (``key=value,...``), e.g. a smaller search budget.
    first_cycle_params: str = ""

    @property
    def urls(self) -> dict[str, str]:
        """Each service's health URL, as ``check`` probes it."""
        urls = {
            "s3": f"http://127.0.0.1:{self.s3_port}/status",
            "mlflow": f"http://127.0.0.1:{self.mlflow_port}/health",
            "batch-api": f"http://127.0.0.1:{self.batch_api_port}/health",
            "bentoml": f"http://127.0.0.1:{self.bentoml_port}/readyz",
            "streamlit": f"http://127.0.0.1:{self.streamlit_port}/_stcore/health",
        }
        if self.with_airflow:
            urls["airflow"] = f"http://127.0.0.1:{self.airflow_port}/api/v2/monitor/health"
        return urls

    @property
    def mlflow_url(self) -> str:
        """The MLflow server: the tracking store and the registry of every client of the stack."""
        return f"http://127.0.0.1:{self.mlflow_port}"

    def client_environment(self) -> dict[str, str]:
        """What the Kedro `stack` environment, BentoML, Streamlit and Airflow tasks read.

        The settings' variables (covertype.config) name the stack's services; the others are the
        feature store's, which only the Kedro `stack` environment reads (conf/stack, through oc.env).
        """
        settings = Settings.environment(
            kedro_env="stack",
            batch_api_url=f"http://127.0.0.1:{self.batch_api_port}",
            service_url=f"http://127.0.0.1:{self.bentoml_port}",
            tracking_uri=self.mlflow_url,
            # The server is the registry too: said here, an inherited MLFLOW_REGISTRY_URI (which beats
            # kedro-mlflow's "same as tracking") cannot send the models elsewhere.
            registry_uri_override=self.mlflow_url,
            **{name: getattr(self, name) for name in MYSQL_SETTINGS},
        )
        feature_store = {
            "S3_ENDPOINT_URL": f"http://127.0.0.1:{self.s3_port}",
            "AWS_ACCESS_KEY_ID": self.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": self.s3_secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "FEATURES_BUCKET": self.features_bucket,
        }
        return {**settings, **feature_store}

    def save(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "layout.json").write_text(json.dumps({**asdict(self), "workdir": str(self.workdir)}))
        self.env_file.write_text(
            "".join(f"{key}={value}\n" for key, value in self.client_environment().items())
        )

    @classmethod
    def load(cls, workdir: Path) -> StackLayout:
        saved = json.loads((workdir / "layout.json").read_text())
        return cls(**{**saved, "workdir": Path(saved["workdir"])})

    @property
    def status_file(self) -> Path:
        return self.workdir / "status.json"

    @property
    def env_file(self) -> Path:
        return self.workdir / "stack.env"

    @property
    def airflow_home(self) -> Path:
        return self.workdir / "airflow_home"


def create_databases(layout: StackLayout) -> None:
    """The raw-data and MLflow databases, created if missing (as the compose init script does)."""
    connection = pymysql.connect(
        host=layout.mysql_host, port=layout.mysql_port, user=layout.mysql_user,
        password=layout.mysql_password, autocommit=True,
    )  # fmt: skip
    with connection:
        for database in (layout.mysql_database, layout.mlflow_database):
            connection.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4")


def _write_status(layout: StackLayout, state: str, services: dict[str, int]) -> None:
    temporary = layout.status_file.with_suffix(".tmp")
    temporary.write_text(json.dumps({"state": state, "supervisor": os.getpid(), "services": services}))
    temporary.replace(layout.status_file)


def _prepare_mysql(layout: StackLayout) -> None:
    ensure_local_mariadb()
    create_databases(layout)


def _prepare_buckets(layout: StackLayout) -> None:
    ensure_buckets([layout.features_bucket, layout.mlflow_bucket], s3_filesystem(layout.client_environment()))


def has_champion(layout: StackLayout, settings: Settings) -> bool:
    """Whether the registry of the stack's MLflow server has a version behind the champion alias."""
    registry = ModelRegistry.from_settings(settings, layout.mlflow_url, layout.mlflow_url)
    return registry.champion() is not None


def run_cycle(layout: StackLayout, log_path: Path) -> None:
    """One `kedro run --env stack`: ingest the current batch, rebuild features, train, promote."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [str(Path(sys.executable).with_name("kedro")), "run", "--env", "stack"]
    if layout.first_cycle_params:
        command += ["--params", layout.first_cycle_params]
    with log_path.open("ab") as log:
        done = subprocess.run(
            command,
            cwd=PROJECT_ROOT, env={**os.environ, **layout.client_environment()},
            stdout=log, stderr=subprocess.STDOUT, check=False,
        )  # fmt: skip
    if done.returncode:
        raise ServiceFailed(f"kedro run --env stack failed (exit {done.returncode}); log {log_path}")


def _serve_champion(layout: StackLayout, env: dict[str, str], settings: Settings) -> list[ServiceProcess]:
    """BentoML serves the champion, so a new stack first runs one cycle to train and promote one."""
    if not has_champion(layout, settings):
        run_cycle(layout, layout.workdir / "first_cycle.log")
    return [bentoml_service(layout.bentoml_port, layout.workdir / "bentoml", env)]


#: Compose services with no step of their own here, and why.
FOLDED_INTO_OTHER_STEPS = {
    "airflow-db": "Airflow's metadata is SQLite in AIRFLOW_HOME",
    "airflow-init": "`airflow db migrate` runs as part of the airflow-apiserver step",
    "airflow-scheduler": "started by the airflow-apiserver step, after the api-server",
    "airflow-dag-processor": "started by the airflow-apiserver step, after the api-server",
    "redis": "the Celery broker: this machine's Redis (AIRFLOW__CELERY__BROKER_URL) under the CeleryExecutor",
    "airflow-triggerer": "started by the airflow-apiserver step under the CeleryExecutor",
    "airflow-worker": "started by the airflow-apiserver step under the CeleryExecutor",
}
#: Steps that start Airflow; a stack without Airflow leaves them out.
AIRFLOW_STEPS = {"airflow-apiserver"}


def service_plan(
    layout: StackLayout, settings: Settings
) -> list[tuple[str, Callable[[], list[ServiceProcess]]]]:
    """The native steps in compose's start order, each giving the processes it started (none for a
    preparation); named after the compose service each stands for."""
    env = layout.client_environment()
    work = layout.workdir
    mysql = f"{layout.mysql_user}:{layout.mysql_password}@{layout.mysql_host}:{layout.mysql_port}"
    steps: dict[str, Callable[[], list[ServiceProcess]]] = {
        "mysql": lambda: _prepare_mysql(layout) or [],
        "minio": lambda: [seaweedfs(layout.s3_port, work / "s3", layout.s3_access_key, layout.s3_secret_key)],
        "minio-init": lambda: _prepare_buckets(layout) or [],
        "mlflow": lambda: [mlflow_server(
            layout.mlflow_port, work / "mlflow",
            backend_store_uri=f"mysql+pymysql://{mysql}/{layout.mlflow_database}",
            artifacts_destination=f"s3://{layout.mlflow_bucket}/", env=env,
        )],
        "batch-api": lambda: [batch_api(
            layout.batch_api_port, work / "batch_api", layout.batch_rotation_seconds, rows_per_request="all",
        )],
        "bentoml": lambda: _serve_champion(layout, env, settings),
        "streamlit": lambda: [streamlit_ui(
            layout.streamlit_port, work / "streamlit", env["COVERTYPE_SERVICE_URL"], env,
        )],
        "airflow-apiserver": lambda: _airflow(layout, env),
    }  # fmt: skip
    wanted = steps.keys() - (set() if layout.with_airflow else AIRFLOW_STEPS)
    return [(name, steps[name]) for name in compose_topology().start_order() if name in wanted]


def _airflow(layout: StackLayout, env: dict[str, str]) -> list[ServiceProcess]:
    """Airflow's api-server, dag-processor and scheduler, its tasks running Kedro in the `stack` env."""
    home = layout.airflow_home
    airflow_env = {**env, **airflow_environment(home, port=layout.airflow_port), **SCHEDULING}
    migrate(airflow_env, layout.workdir / "airflow" / "migrate.log")
    return airflow_services(airflow_env, layout.workdir / "airflow")


def supervise(layout: StackLayout) -> None:
    """Start every service, report ready, and stop them all in reverse order on SIGTERM/SIGINT."""
    layout.workdir.mkdir(parents=True, exist_ok=True)
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    started: dict[str, int] = {}
    try:
        with ExitStack() as running:
            for name, make in service_plan(layout, load_settings()):
                if stopping:
                    break
                _write_status(layout, f"starting {name}", started)
                for service in make():
                    running.enter_context(service)
                    started[service.name] = service.process.pid
            if layout.with_airflow and not stopping:
                _write_status(layout, "waiting for Airflow's first task", started)
                wait_until_a_task_has_started(layout.airflow_port, layout.airflow_home)
            _write_status(layout, "stopping" if stopping else "ready", started)
            while not stopping:
                time.sleep(0.5)
            _write_status(layout, "stopping", started)
    finally:
        layout.status_file.unlink(missing_ok=True)


def up(layout: StackLayout, timeout: float) -> int:
    """Start the supervisor detached and wait until it reports every service ready."""
    if layout.status_file.exists():
        print(f"A stack already runs from {layout.workdir} (covertype-stack down first)", file=sys.stderr)
        return 1
    layout.save()
    log = (layout.workdir / "supervisor.log").open("ab")
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "covertype.stack.native", "supervise", "--workdir", str(layout.workdir)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if supervisor.poll() is not None:
            tail = (layout.workdir / "supervisor.log").read_text(errors="replace").splitlines()[-30:]
            print("The stack failed to start:\n" + "\n".join(tail), file=sys.stderr)
            return 1
        state = json.loads(layout.status_file.read_text())["state"] if layout.status_file.exists() else ""
        if state != last:
            print(f"[{time.strftime('%H:%M:%S')}] {state or 'starting'}", flush=True)
            last = state
        if state == "ready":
            print(f"Stack ready; addresses in {layout.env_file} (`set -a; . {layout.env_file}; set +a`)")
            return check(layout)
        time.sleep(0.5)
    print(f"The stack was not ready after {timeout:.0f} s; stopping it", file=sys.stderr)
    down(layout)
    return 1


def down(layout: StackLayout, timeout: float = 180.0) -> int:
    """Ask the supervisor to stop every service, and wait until it has."""
    if not layout.status_file.exists():
        print(f"No stack runs from {layout.workdir}")
        return 0
    pid = json.loads(layout.status_file.read_text())["supervisor"]
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        layout.status_file.unlink(missing_ok=True)
        return 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and layout.status_file.exists():
        time.sleep(0.5)
    if layout.status_file.exists():
        os.killpg(pid, signal.SIGKILL)
        layout.status_file.unlink(missing_ok=True)
        print("The stack did not stop in time; killed it", file=sys.stderr)
        return 1
    print("Stack stopped")
    return 0


def check(layout: StackLayout, slow_fails: bool = False) -> int:
    """Probe every service and print its state with the reason; non-zero exit if any is down.

    A slow service (it accepted the connection, no answer after a few tries) fails the check only
    with ``slow_fails``: on a loaded machine a busy api-server is slow, not broken.
    """
    table = Table(title="Covertype native stack")
    for header in ("service", "state", "address", "detail"):
        table.add_column(header)
    try:
        pymysql.connect(
            host=layout.mysql_host,
            port=layout.mysql_port,
            user=layout.mysql_user,
            password=layout.mysql_password,
            database=layout.mysql_database,
            connect_timeout=3,
        ).close()
        mysql = Health(State.UP, f"database {layout.mysql_database} reachable")
    except pymysql.err.MySQLError as error:
        mysql = Health(State.DOWN, str(error))
    table.add_row("mysql", _styled(mysql.state), f"{layout.mysql_host}:{layout.mysql_port}", mysql.reason)
    states = [mysql.state]
    for row in service_health(layout.urls):
        states.append(row.health.state)
        table.add_row(row.service, _styled(row.health.state), row.address, row.health.reason)
    for name, pid in _exited_processes(layout).items():
        states.append(State.DOWN)
        table.add_row(name, _styled(State.DOWN), f"pid {pid}", "the process has exited")
    Console().print(table)
    failing = {State.DOWN, State.SLOW} if slow_fails else {State.DOWN}
    return 1 if failing.intersection(states) else 0


def _exited_processes(layout: StackLayout) -> dict[str, int]:
    """The supervisor's services whose process is gone (none when no supervisor runs)."""
    if not layout.status_file.exists():
        return {}
    services: dict[str, int] = json.loads(layout.status_file.read_text())["services"]
    return {name: pid for name, pid in services.items() if not _alive(pid)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


_STATE_COLOURS = {State.UP: "green", State.SLOW: "yellow", State.DOWN: "red"}


def _styled(state: State) -> str:
    return f"[{_STATE_COLOURS[state]}]{state}[/{_STATE_COLOURS[state]}]"


def layout_from_settings(workdir: Path, settings: Settings) -> StackLayout:
    """The layout, with the MySQL server, the batch rotation and Airflow taken from the settings (.env)."""
    return StackLayout(
        workdir=workdir,
        **{name: getattr(settings, name) for name in MYSQL_SETTINGS},
        batch_rotation_seconds=settings.batch_rotation_seconds,
        with_airflow=settings.stack_airflow,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="covertype-stack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "check", "supervise"])
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--slow-fails",
        action="store_true",
        help="check: a slow service fails too",
    )
    args = parser.parse_args(argv)
    if args.command == "supervise":
        supervise(StackLayout.load(args.workdir))
        return
    saved = (args.workdir / "layout.json").exists() and args.command != "up"
    layout = StackLayout.load(args.workdir) if saved else layout_from_settings(args.workdir, load_settings())
    sys.exit(
        {
            "up": lambda: up(layout, args.timeout),
            "down": lambda: down(layout),
            "check": lambda: check(layout, slow_fails=args.slow_fails),
        }[args.command]()
    )


if __name__ == "__main__":
    main()
