"""Gauges of a batch job pushed to a Prometheus Pushgateway: Prometheus' way to hear from batch jobs."""

from __future__ import annotations

import logging
from typing import Any

from kedro.io import AbstractDataset, DatasetError
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

logger = logging.getLogger(__name__)


class PushgatewayDataset(AbstractDataset[dict[str, Any], None]):
    """Write-only: ``{"grouping_key": {label: value}, "values": {metric: value}}`` pushed as gauges.

    Each save replaces the group's metrics under ``job`` (a PUT, as ``push_to_gateway`` does), with the
    push time in ``<job>_last_push_timestamp_seconds``. ``help`` describes each metric. Without a
    ``url`` (no Pushgateway in this environment) or without values, nothing is pushed. A Pushgateway
    that does not answer fails the save, naming it: the alert would be lost silently otherwise.
    """

    def __init__(
        self,
        *,
        url: str | None,
        job: str,
        help: dict[str, str],
        timeout: float = 10.0,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._url = url
        self._job = job
        self._help = help
        self._timeout = timeout
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"url": self._url, "job": self._job}

    def load(self) -> None:
        raise DatasetError(f"{type(self).__name__} is write-only: Prometheus scrapes the Pushgateway")

    def save(self, data: dict[str, Any]) -> None:
        if not self._url or not data:
            logger.info("Pushgateway: nothing pushed (%s)", "no URL set" if not self._url else "no values")
            return
        registry = CollectorRegistry()
        for name, value in data["values"].items():
            Gauge(name, self._help.get(name, name), registry=registry).set(value)
        Gauge(
            f"{self._job}_last_push_timestamp_seconds", "When the job last pushed.", registry=registry
        ).set_to_current_time()
        try:
            push_to_gateway(
                self._url,
                job=self._job,
                registry=registry,
                grouping_key=data["grouping_key"],
                timeout=self._timeout,
            )
        except OSError as error:
            raise DatasetError(f"The Pushgateway at {self._url} refused the push: {error}") from error
        logger.info("Pushgateway %s: pushed %s", self._url, data["values"])
