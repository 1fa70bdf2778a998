"""The Grafana dashboard that compose provisions queries metrics the scraped service really exposes.

Grafana itself has no Debian 12 package nor wheel, so it does not run here: its queries run on the
real Prometheus instead, which scrapes the real service.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import PROJECT_ROOT, RECORD
from tests.monitoring.conftest import eventually, prometheus_api

pytestmark = pytest.mark.integration

GRAFANA = PROJECT_ROOT / "docker" / "grafana"
#: PromQL words that look like names but are not metrics: operators and modifiers.
PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
#: Label lists after by/without/on/ignoring/group_left/group_right, label matchers, strings, ranges.
NOT_NAMES = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)|\{[^}]*\}|\"(?:\\.|[^\"])*\"|\[[^\]]*\]"
)
#: An identifier not followed by "(" (a function or an aggregation) and not inside a number (1e-9).
NAME = re.compile(r"(?<![\w.])[A-Za-z_:][\w:]*\b(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects."""
    return {name for name in NAME.findall(NOT_NAMES.sub(" ", expr)) if name not in PROMQL_KEYWORDS}


def provisioned_dashboards() -> list[Path]:
    """The dashboard files Grafana loads in compose: its provider's folder, mounted from the project."""
    (provider,) = yaml.safe_load((GRAFANA / "provisioning/dashboards/covertype.yml").read_text())["providers"]
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    mounts = dict(reversed(volume.split(":")[:2]) for volume in compose["services"]["grafana"]["volumes"])
    return sorted((PROJECT_ROOT / mounts[provider["options"]["path"]]).glob("*.json"))


#: The dashboard of what the service exposes; drift.json shows what the monitoring pipeline pushes
#: (tests/monitoring/test_pushgateway.py runs its queries).
SERVING_DASHBOARD = "bentoml.json"


def dashboard_queries(name: str | None = None) -> list[str]:
    """The queries of every provisioned dashboard, or of the one named."""
    return [
        target["expr"]
        for path in provisioned_dashboards()
        if name in (None, path.name)
        for panel in json.loads(path.read_text())["panels"]
        for target in panel.get("targets", [])
    ]


def test_metric_names_are_read_from_promql_as_prometheus_would():
    assert metric_names(
        'sum(rate(bentoml_service_request_total{http_response_code=~"5.."}[5m])) '
        "/ clamp_min(sum by (le, endpoint) (rate(x_seconds_bucket[5m] offset 1m)), 1e-9) == bool up"
    ) == {"bentoml_service_request_total", "x_seconds_bucket", "up"}


def test_every_panel_queries_a_metric_and_the_domain_metrics_are_all_shown():
    queries = dashboard_queries()
    assert queries and all(metric_names(expr) for expr in queries)
    names = set().union(*map(metric_names, queries))
    for domain in (
        "covertype_predictions_total",
        "covertype_model_info",
        "covertype_rejected_requests_total",
        "covertype_batch_drift_share",
    ):
        assert domain in names
    assert "covertype_model_latency_seconds_bucket" in names


def test_every_metric_the_dashboard_queries_is_scraped_from_the_service_and_every_query_runs(
    prometheus, champion_service
):
    assert httpx.post(f"{champion_service}/predict", json={"records": RECORD}, timeout=60).status_code == 200
    queries = dashboard_queries(SERVING_DASHBOARD)
    wanted = set().union(*map(metric_names, queries))

    def prometheus_has_them_all() -> None:
        of_the_service = f'{{instance="{champion_service.removeprefix("http://")}"}}'
        scraped = set(prometheus_api(prometheus, "label/__name__/values", **{"match[]": of_the_service}))
        assert wanted - scraped == set()

    eventually(prometheus_has_them_all)
    for expr in queries:  # a query Prometheus cannot parse or evaluate answers with status "error"
        prometheus_api(prometheus, "query", query=expr)
