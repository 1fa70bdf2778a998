"""One Kedro run per process, forked from a server that has imported Kedro, MLflow and scikit-learn once.

Every run still gets a process of its own (kedro-mlflow's process-wide MLflow state ends with it), its
own environment and working folder; what it no longer pays is the ~11 CPU-seconds of importing those
libraries, which every run's fresh interpreter spent again. The server is the standard library's
``forkserver``: started on the first run, it imports the libraries below and forks one child per run.
Only third-party libraries are preloaded; the project's own modules are imported in each child.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

#: What every run imports anyway, and what costs the time (measured with `python -X importtime`).
PRELOADED = [
    "kedro.framework.session",
    "kedro.framework.startup",
    "kedro_datasets.pandas",
    "kedro_mlflow.framework.hooks",
    "mlflow.sklearn",
    "optuna",
    "pandas",
    "sklearn.ensemble",
    "sqlalchemy",
]

_FORKSERVER = multiprocessing.get_context("forkserver")
_FORKSERVER.set_forkserver_preload(PRELOADED)


@dataclass(frozen=True)
class KedroRun:
    """`kedro run --env <env> --pipelines ... --params ...` of ``project``, in ``cwd`` with ``environ``."""

    project: Path
    env: str
    pipelines: Sequence[str] | None
    params: Mapping[str, object] | None
    environ: Mapping[str, str]
    cwd: Path


def _run(run: KedroRun, log_path: Path) -> None:
    """In the child: the run's environment and folder, its output (C-level too) into the log file, then
    the session; exit 1 on failure, with the traceback in the log."""
    os.environ.clear()
    os.environ.update(run.environ)
    os.chdir(run.cwd)
    with log_path.open("wb") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        bootstrap_project(run.project)
        with KedroSession.create(project_path=run.project, env=run.env, runtime_params=run.params) as session:
            session.run(pipeline_names=run.pipelines)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.flush()
    sys.stderr.flush()


def start_in_own_process(run: KedroRun, log_path: Path) -> multiprocessing.process.BaseProcess:
    """Start one Kedro session in a forked child, its output into ``log_path``: the child, running."""
    child = _FORKSERVER.Process(target=_run, args=(run, log_path))
    child.start()
    return child


def run_in_own_process(run: KedroRun) -> tuple[int, str]:
    """Run one Kedro session in a forked child and wait for it: its exit code and its output."""
    with tempfile.NamedTemporaryFile(prefix="kedro_run_", suffix=".log", delete=False) as log:
        log_path = Path(log.name)
    try:
        child = start_in_own_process(run, log_path)
        child.join()
        return child.exitcode, log_path.read_text(errors="replace")
    finally:
        log_path.unlink(missing_ok=True)
