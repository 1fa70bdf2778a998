"""A real Prometheus with the project's prometheus.yml scrapes the real service: its HTTP API shows the
target up and the domain metrics with the values the service exposes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest
from omegaconf import OmegaConf

from covertype.stack.monitoring import PROMETHEUS_CONFIG, targets_file, write_config
from tests.conftest import RECORD
from tests.monitoring.conftest import eventually, exposed, prometheus_api, query

pytestmark = pytest.mark.integration


def promtool_check(config: Path) -> None:
    result = subprocess.run(
        ["promtool", "check", "config", str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_shipped_config():
    promtool_check(PROMETHEUS_CONFIG)


def test_the_native_run_uses_the_shipped_config_with_its_own_targets_and_interval(tmp_path: Path):
    written = write_config(tmp_path, ["127.0.0.1:3000"], scrape_interval="1s")
    promtool_check(written)
    shipped = OmegaConf.load(PROMETHEUS_CONFIG)
    shipped["global"].scrape_interval = "1s"
    assert OmegaConf.load(written) == shipped
    assert json.loads(targets_file(written).read_text()) == [{"targets": ["127.0.0.1:3000"]}]


def test_the_service_is_an_active_target_that_is_up(prometheus, champion_service):
    def target_is_up() -> None:
        targets = prometheus_api(prometheus, "targets", state="active")["activeTargets"]
        # The targets file is read a few seconds after start, the target scraped after that.
        assert [target["scrapeUrl"] for target in targets] == [f"{champion_service}/metrics"]
        assert targets[0]["health"] == "up", targets[0]["lastError"]

    eventually(target_is_up)


def selector(name: str, labels: dict[str, str]) -> str:
    """PromQL selecting one series: ``name{label="value",...}``."""
    return name + "{" + ",".join(f"{label}={json.dumps(value)}" for label, value in labels.items()) + "}"


def test_predictions_and_a_rejection_reach_prometheus_as_the_service_counts_them(
    prometheus, champion_service
):
    answers = httpx.post(f"{champion_service}/predict", json={"records": [RECORD] * 5}, timeout=60)
    rejection = httpx.post(
        f"{champion_service}/predict", json={"records": {**RECORD, "Slope": 91}}, timeout=60
    )
    assert (answers.status_code, rejection.status_code) == (200, 400)
    served = httpx.post(f"{champion_service}/model_info", json={}, timeout=30).json()
    series = [
        ("covertype_predictions_total", {"cover_type": answers.json()[0]["cover_type_name"]}),
        ("covertype_rejected_requests_total", {"reason": "invalid_input"}),
        ("covertype_model_latency_seconds_count", {}),
        (
            "covertype_model_info",
            {label: served[label] for label in ("name", "version", "alias", "prediction_path")},
        ),
    ]
    now = exposed(champion_service)
    expected = {selector(name, labels): now[(name, frozenset(labels.items()))] for name, labels in series}
    predictions, rejections, model_calls, serving = expected.values()
    assert predictions >= 5 and rejections >= 1 and model_calls >= 1 and serving == 1

    def prometheus_has_the_services_values() -> None:
        seen = {promql: list(query(prometheus, promql).values()) for promql in expected}
        assert seen == {promql: [value] for promql, value in expected.items()}

    eventually(prometheus_has_the_services_values)
