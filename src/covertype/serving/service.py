"""The champion as a BentoML service: ``bentoml serve covertype.serving.service:CovertypeClassifier``.

One worker holds one model, so ``reload`` changes what every later request gets; the forest
predicts single-threaded and adaptive batching groups concurrent requests into one call.
"""

from __future__ import annotations

import logging
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
        logger.info("serving %s version %s", MODEL_NAME, self._champion.info.version)

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
        with self._reload_lock:
            current = self._champion
            try:
                if champion_version(MODEL_NAME, CHAMPION_ALIAS) == current.info.version:
                    return ReloadResult(
                        reloaded=False,
                        message=f"version {current.info.version} is still the champion; nothing to load",
                        serving=current.info,
                    )
                candidate = load_champion(MODEL_NAME, CHAMPION_ALIAS)
            except Exception as error:  # any registry, storage or deserialisation failure
                logger.exception("reload failed; still serving version %s", current.info.version)
                ctx.response.status_code = 503
                return ReloadResult(
                    reloaded=False,
                    message=f"loading {MODEL_NAME}@{CHAMPION_ALIAS} failed "
                    f"({type(error).__name__}: {error}); still serving version {current.info.version}",
                    serving=current.info,
                )
            self._champion = candidate
            message = f"now serving version {candidate.info.version} (was {current.info.version})"
            logger.info(message)
            return ReloadResult(reloaded=True, message=message, serving=candidate.info)
