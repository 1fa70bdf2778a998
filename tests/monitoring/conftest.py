"""A real Prometheus (Debian's package) scraping the session's real `bentoml serve`, and ways to read both."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from covertype.stack.monitoring import prometheus_server
from covertype.stack.processes import free_port

#: Prometheus scrapes every second in the tests (15 s in the shipped configuration).
SCRAPE_INTERVAL = "1s"


@pytest.fixture(scope="package")
def prometheus(champion_service: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus with the project's prometheus.yml, scraping the champion service while these tests
    run (it stops after them): its URL."""
    port = free_port()
    target = champion_service.removeprefix("http://")
    workdir = tmp_path_factory.mktemp("prometheus")
    with prometheus_server(port, workdir, [target], scrape_interval=SCRAPE_INTERVAL):
        yield f"http://127.0.0.1:{port}"


def exposed(service: str) -> dict[tuple[str, frozenset], float]:
    """The service's /metrics now: (sample name, labels) -> value."""
    text = httpx.get(f"{service}/metrics", timeout=10).raise_for_status().text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def prometheus_api(prometheus: str, path: str, **params: str) -> object:
    """The ``data`` of a successful Prometheus HTTP API answer."""
    body = httpx.get(f"{prometheus}/api/v1/{path}", params=params, timeout=10).raise_for_status().json()
    assert body["status"] == "success", body
    return body["data"]


def query(prometheus: str, promql: str) -> dict[frozenset, float]:
    """An instant query's series: labels (without __name__) -> value."""
    result = prometheus_api(prometheus, "query", query=promql)["result"]
    return {
        frozenset((k, v) for k, v in series["metric"].items() if k != "__name__"): float(series["value"][1])
        for series in result
    }


def eventually(assertion, timeout: float = 60) -> None:
    """Run ``assertion`` until it passes (Prometheus scrapes on its own clock), at most ``timeout`` s."""
    for attempt in Retrying(
        stop=stop_after_delay(timeout), wait=wait_fixed(0.5), retry=retry_if_exception_type(AssertionError),
        reraise=True,
    ):  # fmt: skip
        with attempt:
            assertion()
