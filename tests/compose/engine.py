"""A Docker engine for the compose tests: the one that answers, else a dockerd of our own, stopped by PID.

Our own dockerd keeps its images in a data-root that outlives the run (layers are reused by the next
run on the same machine; a fresh machine builds everything) and its socket and state in a temporary
folder. Stopping dockerd leaves its changes to the host's network behind (iptables chains and the
FORWARD policy, IP forwarding, bridges, the netns mount): they are put back as they were.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from covertype.stack.processes import ServiceProcess

#: Where our dockerd keeps images between runs (one machine's cache; never part of the project).
DATA_ROOT = Path(os.environ.get("COVERTYPE_TEST_DOCKER_DATA_ROOT", "/var/tmp/covertype-docker"))
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def engine_answers(env: dict[str, str]) -> bool:
    """Whether `docker version` reaches a daemon with this environment's DOCKER_HOST."""
    done = subprocess.run(["docker", "version"], env=env, capture_output=True, check=False)
    return done.returncode == 0


@dataclass(frozen=True)
class HostNetwork:
    """What dockerd changes on the host and does not undo: saved before it starts, restored after."""

    iptables: str
    ip_forward: str
    links: frozenset[str]

    @classmethod
    def save(cls) -> HostNetwork:
        dump = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
        return cls(dump, IP_FORWARD.read_text(), _links())

    def restore(self, exec_root: Path) -> None:
        subprocess.run(["iptables-restore"], input=self.iptables, text=True, check=True)
        for table in ("filter", "nat"):
            if f"*{table}" not in self.iptables:  # not loaded before: it held nothing of the host's
                subprocess.run(["iptables", "-t", table, "-F"], check=False)
                subprocess.run(["iptables", "-t", table, "-X"], check=False)
                subprocess.run(["iptables", "-t", table, "-P", "FORWARD", "ACCEPT"], check=False)
        for link in _links() - self.links:
            subprocess.run(["ip", "link", "delete", link], check=False, capture_output=True)
        IP_FORWARD.write_text(self.ip_forward)
        mounts = Path("/proc/mounts").read_text().splitlines()
        for mount_point in sorted((line.split()[1] for line in mounts), reverse=True):
            if mount_point.startswith(str(exec_root)):
                subprocess.run(["umount", "-l", mount_point], check=False)


def _links() -> frozenset[str]:
    return frozenset(path.name for path in Path("/sys/class/net").iterdir())


@contextmanager
def docker_engine(workdir: Path) -> Iterator[dict[str, str]]:
    """The environment (DOCKER_HOST) of a Docker engine that answers: this machine's, else our own."""
    if engine_answers(dict(os.environ)):
        yield {}
        return
    assert shutil.which("dockerd"), "no Docker engine answers and dockerd is missing: make system-deps"
    exec_root = workdir / "exec"
    socket = workdir / "docker.sock"
    env = {"DOCKER_HOST": f"unix://{socket}"}
    network = HostNetwork.save()
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    dockerd = ServiceProcess(
        name="dockerd",
        command=[
            "dockerd",
            "--data-root",
            str(DATA_ROOT),
            "--exec-root",
            str(exec_root),
            "--pidfile",
            str(workdir / "dockerd.pid"),
            "-H",
            env["DOCKER_HOST"],
        ],
        ready=lambda: engine_answers({**os.environ, **env}),
        log_path=workdir / "dockerd.log",
        start_timeout=60,
        stop_timeout=30,
    )
    try:
        with dockerd:
            yield env
    finally:
        network.restore(exec_root)
