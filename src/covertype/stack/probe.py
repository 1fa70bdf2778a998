"""``covertype-probe URL``: exit 0 when URL answers 2xx, else print why and exit 1.

Container healthchecks use it (the project image has no curl), and so does ``make check-stack``.
A probe tells three states apart, because they call for different actions:

- **up**: the service answered 2xx;
- **slow**: it accepted the connection but gave no answer yet (a busy api-server on a loaded machine);
  waiting is the remedy, so ``check`` tries again a few times before it says so;
- **down**: nothing listens (connection refused), the process is gone, or it answered non-2xx.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

import httpx
from tenacity import RetryError, Retrying, retry_if_result, stop_after_attempt, wait_fixed


class State(StrEnum):
    UP = "up"
    SLOW = "slow"
    DOWN = "down"


@dataclass(frozen=True)
class Health:
    """One service's state and a one-line reason a person can act on."""

    state: State
    reason: str
    tries: int = 1

    @property
    def up(self) -> bool:
        return self.state is State.UP


def probe(url: str, timeout: float = 5.0) -> Health:
    """One try: whether ``url`` is up, slow (no answer within ``timeout``) or down."""
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.ConnectError as error:
        return Health(State.DOWN, f"connection refused or host unknown ({error})")
    except httpx.TimeoutException:
        return Health(State.SLOW, f"no answer within {timeout:g} s")
    except httpx.HTTPError as error:
        return Health(State.DOWN, f"{type(error).__name__}: {error}")
    if response.is_success:
        return Health(State.UP, f"HTTP {response.status_code}")
    return Health(State.DOWN, f"HTTP {response.status_code}: {response.text[:120].strip()}")


def patient_probe(url: str, timeout: float = 5.0, tries: int = 3, pause: float = 1.0) -> Health:
    """Probe again while the service is only slow; a slow answer says how long and how often it waited."""
    retrying = Retrying(
        stop=stop_after_attempt(tries),
        wait=wait_fixed(pause),
        retry=retry_if_result(lambda health: health.state is State.SLOW),
    )
    try:
        health = retrying(probe, url, timeout)
    except RetryError:
        waited = tries * timeout + (tries - 1) * pause
        reason = f"no answer after {tries} tries of {timeout:g} s ({waited:g} s in all)"
        return Health(State.SLOW, reason, tries)
    return replace(health, tries=retrying.statistics["attempt_number"])


@dataclass(frozen=True)
class ServiceHealth:
    """One row of a health report: which service, where it was probed, and its state with the reason."""

    service: str
    address: str
    health: Health


def service_health(urls: Mapping[str, str]) -> list[ServiceHealth]:
    """Each service's health URL probed patiently, in order: what ``make check-stack`` and the UI show."""
    return [ServiceHealth(name, url, patient_probe(url)) for name, url in urls.items()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="covertype-probe", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    health = probe(args.url, args.timeout)
    if not health.up:
        print(f"{args.url}: {health.state}: {health.reason}", file=sys.stderr)
    sys.exit(0 if health.up else 1)


if __name__ == "__main__":
    main()
