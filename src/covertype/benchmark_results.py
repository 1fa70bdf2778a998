"""Benchmark results kept as data: one JSON file per benchmark under ``benchmarks/results/``.

Every ``make bench*`` saves what it measured with :func:`save_result`, and the docs render the latest
file of each benchmark (``docs/hooks``), so no figure is typed by hand. A result records where it
came from (the command, the commit, the date) and the machine it ran on (cores and load average):
on a shared machine a figure means little without the load it was measured under, and ratios
against a baseline measured in the same run are what compare across runs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from covertype.paths import PROJECT_ROOT

RESULTS_DIR = PROJECT_ROOT / "benchmarks" / "results"


def save_result(
    name: str,
    figures: dict[str, Any],
    command: str,
    *,
    ratios: dict[str, float] | None = None,
    notes: str = "",
    results_dir: Path | None = None,
) -> Path:
    """Write ``<results_dir>/<name>.json`` atomically and return its path.

    ``figures`` maps a label to a number, a string, or a nested mapping/list (a per-round or
    per-cycle table); ``ratios`` maps a label such as ``"ours / mlflow p50"`` to a ratio measured in
    the same run, which the docs show first. ``command`` is what a reader types to measure again.
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"benchmark name {name!r}: a plain file stem is expected, such as 'serving'")
    target_dir = results_dir or RESULTS_DIR
    target_dir.mkdir(parents=True, exist_ok=True)
    result = {
        "name": name,
        "command": command,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": _git_commit(),
        "machine": machine(),
        "ratios": ratios or {},
        "figures": figures,
        "notes": notes,
    }
    text = json.dumps(result, indent=2, sort_keys=False, default=str) + "\n"
    target = target_dir / f"{name}.json"
    with tempfile.NamedTemporaryFile("w", dir=target_dir, suffix=".tmp", delete=False) as handle:
        handle.write(text)
    os.replace(handle.name, target)
    return target


def this_command() -> str:
    """How this benchmark process was started, as a reader would type it from the project root."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    if spec is not None:  # started as `python -m package.module`
        return shlex.join(["uv", "run", "python", "-m", spec.name, *sys.argv[1:]])
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(PROJECT_ROOT) if script.is_relative_to(PROJECT_ROOT) else script
    return shlex.join(["uv", "run", "python", str(shown), *sys.argv[1:]])


def load_results(results_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every saved result by name (the latest of each benchmark: one file per name)."""
    folder = results_dir or RESULTS_DIR
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def machine() -> dict[str, Any]:
    """The cores, the 1/5/15-minute load average and the platform a figure was measured on."""
    return {
        "cores": os.cpu_count(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def _git_commit() -> str:
    """The checkout's commit, with ``-dirty`` when files differ from it, or ``unknown`` outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit
