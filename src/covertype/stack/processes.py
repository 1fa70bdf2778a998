"""Start a service as a child process, wait until it answers, stop it by PID.

One mechanism for every native service (batch API, MLflow server, SeaweedFS, BentoML, Streamlit,
Airflow), whether the demo, `make airflow` or a test fixture starts it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from covertype.stack.probe import probe


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_ok(url: str) -> Callable[[], bool]:
    """A readiness check: ``url`` answers with a 2xx status."""
    return lambda: probe(url, timeout=2).up


class ServiceFailed(RuntimeError):
    """A service exited or did not become ready in time; the message carries its log's tail."""


@dataclass
class ServiceProcess:
    """A named service command with its readiness check and log file."""

    name: str
    command: Sequence[str]
    ready: Callable[[], bool]
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    start_timeout: float = 120.0
    stop_timeout: float = 40.0
    process: subprocess.Popen | None = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # A new session makes the service its own process group, so stop() reaches its children.
            self.process = subprocess.Popen(
                list(self.command),
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                cwd=self.cwd,
                start_new_session=True,
            )
        # Poll until ready within the service's own deadline: one silent window is not a failure.
        waiting = Retrying(
            stop=stop_after_delay(self.start_timeout),
            wait=wait_fixed(0.5),
            retry=retry_if_result(lambda ready: not ready),
        )
        try:
            waiting(self._ready_while_running)
        except RetryError:
            self.stop()
            raise ServiceFailed(
                f"{self.name} was not ready after {self.start_timeout:.0f} s; "
                f"log {self.log_path}:\n{self.log_tail()}"
            ) from None
        return self

    def _ready_while_running(self) -> bool:
        """The readiness check, or ServiceFailed (not retried) once the process has exited."""
        if self.process.poll() is not None:
            raise ServiceFailed(
                f"{self.name} exited with code {self.process.returncode} while starting; "
                f"log {self.log_path}:\n{self.log_tail()}"
            )
        return self.ready()

    def stop(self) -> None:
        """SIGTERM the service's process group, then SIGKILL what is left after ``stop_timeout``."""
        if self.process is None or self.process.poll() is not None:
            return
        group = os.getpgid(self.process.pid)
        os.killpg(group, signal.SIGTERM)
        try:
            self.process.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.process.wait()
        else:
            # Children that outlive their parent (workers) would keep ports busy.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
