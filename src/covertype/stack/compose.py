"""``covertype-stack``: the docker-compose stack from its user's side.

``env`` writes ``.env`` from ``.env.example`` with every secret left empty there filled with a fresh
random value: docker-compose.yml refuses to start without them, so no password works unchanged.
``check`` reads ``docker compose ps`` (each container's state and healthcheck) and says, per service,
whether it is up, still starting or down, with the reason; a one-shot init job counts as up once it
has finished cleanly.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from covertype.paths import PROJECT_ROOT
from covertype.stack.probe import State

ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
#: Secrets whose format is not free text: Airflow's Fernet key is 32 url-safe base64 bytes.
FORMATTED_SECRETS = {"AIRFLOW_FERNET_KEY": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode()}


def env_with_fresh_secrets(example: str, overrides: dict[str, str] | None = None) -> str:
    """``.env.example``'s text, each empty ``NAME=`` given a new random value (or ``overrides``'s)."""
    overrides = overrides or {}
    lines = []
    for line in example.splitlines():
        name, separator, value = line.partition("=")
        if separator and not line.startswith("#"):
            if name in overrides:
                value = overrides[name]
            elif not value:
                value = FORMATTED_SECRETS.get(name, lambda: secrets.token_urlsafe(24))()
            lines.append(f"{name}={value}")
        else:
            lines.append(line)
    lines += [f"{name}={value}" for name, value in overrides.items() if f"\n{name}=" not in f"\n{example}"]
    return "\n".join(lines) + "\n"


def write_env(path: Path, overrides: dict[str, str] | None = None) -> None:
    """Write ``path`` (a new file, readable by its owner only) from .env.example with fresh secrets."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as env_file:
        env_file.write(env_with_fresh_secrets(ENV_EXAMPLE.read_text(), overrides))


@dataclass(frozen=True)
class ContainerHealth:
    """One container of a compose service: up or down, and why."""

    service: str
    container: str
    state: State
    reason: str


def container_health(container: dict, one_shot: bool) -> ContainerHealth:
    """A `docker compose ps --format json` row read as up, slow or down: a long-running service is up
    when running and healthy (or without a healthcheck), slow while its healthcheck is starting; a
    one-shot job is up once it exited with 0."""
    state, health, code = container["State"], container.get("Health", ""), container.get("ExitCode", 0)
    if one_shot and state == "exited":
        verdict, reason = (State.UP if code == 0 else State.DOWN), f"finished (exit {code})"
    elif state != "running":
        verdict, reason = State.DOWN, f"{state} (exit {code})"
    elif health == "starting":  # not yet passed its healthcheck: waiting is the remedy
        verdict, reason = State.SLOW, "running, healthcheck starting"
    else:
        verdict = State.UP if health in ("", "healthy") else State.DOWN
        reason = f"running, {health or 'no healthcheck'}"
    return ContainerHealth(container["Service"], container["Name"], verdict, reason)


def stack_health(compose: Sequence[str], env: dict[str, str] | None = None) -> list[ContainerHealth]:
    """Every service of the compose project in the current folder, each container's health (those of
    optional profiles too, when started); a service of the default profile without a container is down."""

    def run(*args: str) -> str:
        done = subprocess.run(
            [*compose, *args], env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False
        )
        if done.returncode:
            raise RuntimeError(f"{' '.join([*compose, *args])} failed: {done.stderr.strip()}")
        return done.stdout

    services = json.loads(run("--profile", "*", "config", "--format", "json"))["services"]
    containers = [
        json.loads(line)
        for line in run("--profile", "*", "ps", "--all", "--format", "json").splitlines()
        if line
    ]
    rows = [
        container_health(container, services[container["Service"]].get("restart") == "no")
        for container in containers
        if container["Service"] in services
    ]
    created = {row.service for row in rows}
    # A service of an optional profile (monitoring, flower) without a container was not asked for.
    wanted = [name for name, service in services.items() if not service.get("profiles")]
    rows += [ContainerHealth(name, "-", State.DOWN, "no container") for name in wanted if name not in created]
    return sorted(rows, key=lambda row: (list(services).index(row.service), row.container))


def check(compose: Sequence[str]) -> int:
    """Print each service's containers up, slow or down with the reason; exit 1 if any is down."""
    try:
        rows = stack_health(compose)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    table = Table(title="Covertype stack (docker compose)")
    for header in ("service", "state", "container", "detail"):
        table.add_column(header)
    for row in rows:
        colour = {State.UP: "green", State.SLOW: "yellow", State.DOWN: "red"}[row.state]
        table.add_row(row.service, f"[{colour}]{row.state}[/{colour}]", row.container, row.reason)
    Console().print(table)
    return 1 if any(row.state is State.DOWN for row in rows) else 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="covertype-stack", description=__doc__)
    subcommands = parser.add_subparsers(dest="command", required=True)
    env = subcommands.add_parser("env", help="write .env from .env.example with fresh secrets")
    env.add_argument("--path", type=Path, default=Path(".env"))
    subcommands.add_parser("check", help="each compose service up or down, with the reason")
    args = parser.parse_args(argv)
    if args.command == "env":
        if args.path.exists():
            sys.exit(f"{args.path} exists: edit it, or move it away to make a new one")
        write_env(args.path)
        print(f"wrote {args.path} with fresh secrets; next: docker compose up -d")
        return
    sys.exit(check(["docker", "compose"]))


if __name__ == "__main__":
    main()
