"""The native services of the stack, as ServiceProcess definitions with their readiness checks."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pymysql

from covertype.stack.processes import ServiceProcess, http_ok


def batch_api(
    port: int,
    workdir: Path,
    min_update_seconds: float = 300.0,
    rows_per_request: str = "course",
    seed: int | None = None,
    *,
    source: str | None = None,
    rows: int | None = None,
) -> ServiceProcess:
    """The Covertype batch API on 127.0.0.1:``port`` with its state and log under ``workdir``.

    ``source`` and ``rows``: its ``--source`` and ``--rows`` (default: the settings'); a synthetic
    source of 581,012 rows takes about half a minute to build.
    """
    command = [
        sys.executable, "-m", "covertype.batch_api",
        "--host", "127.0.0.1", "--port", str(port),
        "--state", str(workdir / "batch_api_state.sqlite3"),
        "--min-update-seconds", str(min_update_seconds),
        "--rows-per-request", rows_per_request,
    ]  # fmt: skip
    if seed is not None:
        command += ["--seed", str(seed)]
    if source is not None:
        command += ["--source", source]
    if rows is not None:
        command += ["--rows", str(rows)]
    return ServiceProcess(
        name="batch-api",
        command=command,
        ready=http_ok(f"http://127.0.0.1:{port}/health"),
        log_path=workdir / "batch_api.log",
        start_timeout=180 if source == "synthetic" else 60,
    )


def mysql_reachable(
    host: str = "127.0.0.1", port: int = 3306, user: str = "root", password: str = ""
) -> bool:
    try:
        pymysql.connect(host=host, port=port, user=user, password=password, connect_timeout=2).close()
    except pymysql.err.OperationalError:
        return False
    return True


def ensure_local_mariadb(timeout: float = 60.0) -> None:
    """Start this machine's MariaDB (Debian package) if it is installed but down, and wait for it."""
    if mysql_reachable():
        return
    daemon = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    if not Path(daemon).exists():
        raise RuntimeError("MariaDB is not reachable on 127.0.0.1:3306 and mariadbd is not installed")
    subprocess.run(["start-stop-daemon", "--start", "--oknodo", "--background", "--exec", daemon], check=True)
    deadline = time.monotonic() + timeout
    while not mysql_reachable():
        if time.monotonic() > deadline:
            raise RuntimeError(f"MariaDB did not answer on 127.0.0.1:3306 within {timeout:.0f} s")
        time.sleep(0.5)
