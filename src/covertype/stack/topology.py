"""The stack's topology, written once in docker-compose.yml and read from there by the native stack.

Compose says which services exist, which needs which (``depends_on``) and on which host port each is
published; the native supervisor starts the same services in an order that respects those
dependencies, on the same ports. Only how a service is started natively is the native stack's own.
"""

from __future__ import annotations

import graphlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from covertype.paths import PROJECT_ROOT

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"


@dataclass(frozen=True)
class Topology:
    """The services of compose's default profile (optional profiles such as monitoring left out)."""

    services: dict[str, dict[str, Any]]

    @classmethod
    def from_compose(cls, path: Path = COMPOSE_FILE) -> Topology:
        services = yaml.safe_load(path.read_text())["services"]
        return cls({name: spec for name, spec in services.items() if not spec.get("profiles")})

    def dependencies(self, service: str) -> set[str]:
        return set(self.services[service].get("depends_on") or {})

    def start_order(self) -> list[str]:
        """Every service after all it depends on, otherwise in the file's order (a stable order)."""
        graphlib.TopologicalSorter({name: self.dependencies(name) for name in self.services}).prepare()
        order: list[str] = []
        while len(order) < len(self.services):
            order.append(
                next(
                    name
                    for name in self.services
                    if name not in order and self.dependencies(name) <= set(order)
                )
            )
        return order

    def host_port(self, service: str) -> int:
        """The host port compose publishes the service on (``127.0.0.1:8000:80`` -> 8000)."""
        first = self.services[service]["ports"][0]
        return int(str(first).split(":")[-2])


@cache
def compose_topology() -> Topology:
    """The project's docker-compose.yml, read once per process."""
    return Topology.from_compose()
