"""`make serve` on a fresh clone, before anything was trained: the console says why and what to run."""

from __future__ import annotations

import httpx
import pytest


def test_a_service_started_without_a_champion_says_in_one_log_line_what_to_run(
    service_without_champion, tmp_path_factory: pytest.TempPathFactory
):
    assert httpx.get(f"{service_without_champion}/readyz", timeout=30).status_code == 200
    (log,) = tmp_path_factory.getbasetemp().glob("service_without_champion[0-9]*/bentoml.log")

    lines = [line for line in log.read_text().splitlines() if "no model behind covertype@champion" in line]

    # One line says it (other tests of the session may make the service look again, and say it again).
    assert lines, log.read_text()[-3000:]
    assert "mlflow.db" in lines[0]
    assert "`make demo`" in lines[0] and "`kedro run`" in lines[0]
    assert "Traceback" not in log.read_text()
