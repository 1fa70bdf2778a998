"""The monitoring pipeline's batch metrics: pushed to a real Pushgateway, scraped by a real Prometheus
with the shipped configuration, firing the shipped alert and feeding the drift dashboard."""

from __future__ import annotations

import json
import subprocess

import httpx
import pandas as pd
import pytest

from covertype.datasets.pushgateway_dataset import PushgatewayDataset
from covertype.pipelines.monitoring.nodes import alert_metrics
from covertype.stack.monitoring import PROMETHEUS_CONFIG, prometheus_server, pushgateway_server
from covertype.stack.processes import free_port
from tests.conftest import PROJECT_ROOT
from tests.monitoring.conftest import eventually, prometheus_api, query
from tests.monitoring.test_dashboard import metric_names

pytestmark = pytest.mark.integration

ALERTS = PROMETHEUS_CONFIG.parent / "alerts.yml"
DRIFT_DASHBOARD = PROJECT_ROOT / "docker/grafana/dashboards/drift.json"


def test_promtool_accepts_the_alerting_rules():
    result = subprocess.run(
        ["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and "1 rules found" in result.stdout, result.stdout + result.stderr


def pushed(batch_number: int, drifted: bool):
    """What the pipeline's push node makes of a batch report."""
    report = pd.DataFrame(
        {"source": ["batch"], "group_number": [1], "batch_number": [batch_number], "drifted": [drifted],
         "drift_share": [0.75 if drifted else 0.1], "drifted_fields": [9 if drifted else 1]}
    )  # fmt: skip
    return alert_metrics(report)


def test_a_drifted_batch_reaches_prometheus_through_the_pushgateway_and_fires_the_alert(tmp_path):
    gateway_port, prometheus_port = free_port(), free_port()
    with pushgateway_server(gateway_port, tmp_path / "pushgateway"):
        gateway = f"127.0.0.1:{gateway_port}"
        with prometheus_server(
            prometheus_port,
            tmp_path / "prometheus",
            [],
            "1s",
            pushgateways=[gateway],
            evaluation_interval="1s",
        ):
            prometheus = f"http://127.0.0.1:{prometheus_port}"
            help_texts = {"covertype_batch_drift_share": "share"}
            dataset = PushgatewayDataset(url=f"http://{gateway}", job="covertype_monitoring", help=help_texts)
            dataset.save(pushed(4, drifted=True))
            assert "covertype_batch_drifted" in httpx.get(f"http://{gateway}/metrics", timeout=10).text

            def the_alert_fires() -> None:
                alerts = prometheus_api(prometheus, "alerts")["alerts"]
                assert [
                    (a["labels"]["alertname"], a["labels"]["group_number"], a["state"]) for a in alerts
                ] == [("CovertypeBatchDrifted", "1", "firing")]
                assert "Batch 4: 9 of 12 fields drifted" in " ".join(
                    alerts[0]["annotations"]["description"].split()
                )

            eventually(the_alert_fires)
            pushed_share = 'covertype_batch_drift_share{job="covertype_monitoring",group_number="1"}'
            assert list(query(prometheus, pushed_share).values()) == [0.75]
            for target in json.loads(DRIFT_DASHBOARD.read_text())["panels"]:
                for expr in (t["expr"] for t in target["targets"]):
                    assert metric_names(expr) <= {
                        "covertype_batch_drift_share",
                        "covertype_batch_drifted_fields",
                        "covertype_batch_drift_batch_number",
                    }
                    assert query(prometheus, expr), f"{expr} returns no series"

            dataset.save(pushed(5, drifted=False))  # the next batch did not drift: the alert resolves

            def the_alert_resolves() -> None:
                assert prometheus_api(prometheus, "alerts")["alerts"] == []

            eventually(the_alert_resolves)
