"""The champion as a BentoML service: ``bentoml serve covertype.serving.service:CovertypeClassifier``.

The service follows the registry's ``champion`` alias: it checks the alias every
``COVERTYPE_CHAMPION_POLL_SECONDS`` (default 30; 0 turns it off) and loads a new champion when
training promotes one; ``reload`` does the same at once. Adaptive batching groups concurrent requests
into one model call.
"""

from __future__ import annotations

import logging
import os
import threading

import bentoml

from covertype.serving.champion import (
    CHAMPION_ALIAS,
    MODEL_NAME,
    Champion,
    champion_version,
    load_champion,
)
from covertype.serving.schema import ModelInfo, Prediction, Records, ReloadResult

logger = logging.getLogger(__name__)


@bentoml.service(
    name="covertype",
    workers=1,
    resources={"cpu": "1"},
    traffic={"timeout": 60},
    metrics={"enabled": True},
)
class CovertypeClassifier:
    """Predicts the forest cover type of records with the registry's current champion."""

    def __init__(self) -> None:
        self._champion: Champion = load_champion(MODEL_NAME, CHAMPION_ALIAS)
        self._reload_lock = threading.Lock()
        self._failed_version: str | None = None
        self._stopping = threading.Event()
        logger.info("serving %s version %s", MODEL_NAME, self._champion.info.version)
        poll_seconds = float(os.environ.get("COVERTYPE_CHAMPION_POLL_SECONDS", "30"))
        if poll_seconds > 0:
            threading.Thread(
                target=self._follow_champion, args=(poll_seconds,), name="champion-watcher", daemon=True
            ).start()

    @bentoml.api(batchable=True, max_batch_size=1000, max_latency_ms=10_000)
    def predict(self, records: Records) -> list[Prediction]:
        """One prediction per record, in order; a single record object is answered as a list of one."""
        return self._champion.predict(records)

    @bentoml.api
    def model_info(self) -> ModelInfo:
        """The model version answering now: registry name, version, alias, run, metrics, dates."""
        return self._champion.info

    @bentoml.api
    def reload(self, ctx: bentoml.Context) -> ReloadResult:
        """Load the version the alias points at now; if that fails, keep serving the current one (503)."""
        result, failed = self._load_new_champion(retry_failed=True)
        if failed:
            ctx.response.status_code = 503
        return result

    @bentoml.on_shutdown
    def stop_following_the_champion(self) -> None:
        self._stopping.set()

    def _follow_champion(self, poll_seconds: float) -> None:
        """Check the alias every ``poll_seconds``; each worker checks on its own, so all of them follow it."""
        while not self._stopping.wait(poll_seconds):
            self._load_new_champion(retry_failed=False)

    def _load_new_champion(self, retry_failed: bool) -> tuple[ReloadResult, bool]:
        """Load the alias's version if it is not the one served: what happened, and whether loading failed.

        A version that failed to load is tried again only on request (``retry_failed``), so that the
        watcher does not reload a broken version at every check.
        """
        with self._reload_lock:
            current = self._champion
            version: str | None = None
            try:
                version = champion_version(MODEL_NAME, CHAMPION_ALIAS)
                if version == current.info.version:
                    message = f"version {version} is still the champion; nothing to load"
                    return ReloadResult(reloaded=False, message=message, serving=current.info), False
                if version == self._failed_version and not retry_failed:
                    message = f"version {version} failed to load; still serving {current.info.version}"
                    return ReloadResult(reloaded=False, message=message, serving=current.info), True
                candidate = load_champion(MODEL_NAME, CHAMPION_ALIAS)
            except Exception as error:  # any registry, storage or deserialisation failure
                logger.exception("reload failed; still serving version %s", current.info.version)
                self._failed_version = version
                message = (
                    f"loading {MODEL_NAME}@{CHAMPION_ALIAS} failed ({type(error).__name__}: {error}); "
                    f"still serving version {current.info.version}"
                )
                return ReloadResult(reloaded=False, message=message, serving=current.info), True
            self._champion, self._failed_version = candidate, None
            message = f"now serving version {candidate.info.version} (was {current.info.version})"
            logger.info(message)
            return ReloadResult(reloaded=True, message=message, serving=candidate.info), False
