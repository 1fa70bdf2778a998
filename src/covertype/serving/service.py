"""The champion as a BentoML service: ``bentoml serve covertype.serving.service:CovertypeClassifier``.

The service follows the registry's champion alias: it checks the alias every ``champion_poll_seconds``
of the settings (COVERTYPE_CHAMPION_POLL_SECONDS, default 30; 0 turns it off) and loads a new champion
when training promotes one; ``reload`` does the same at once. ``predict``'s ``model`` asks for another
registered version by alias or number (covertype.serving.versions), and ``GET /models`` lists them all.
A version answers through what it carries (covertype.serving.champion): the converted model that
registration proved on the test split, on ONNX Runtime, or else its own ``predict_proba``. Every
request size takes that one route: a few records are answered on the event loop (~20 µs in the
engine), more on a worker thread; concurrent requests run side by side in the engine. The answers are
serialised once, by pydantic from the typed predictions, and sent as they are. ``explain`` answers
why, per record (covertype.serving.explain). Its domain metrics (covertype.serving.metrics) are on
``/metrics`` with BentoML's.

The request limits and the strict contract (covertype.serving.contract) are read from the settings of
the process when this module is imported: BentoML builds the request model from ``predict``'s
annotation then.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import bentoml
from fastapi import FastAPI
from mlflow.exceptions import MlflowException
from pydantic import TypeAdapter
from starlette.responses import JSONResponse, Response

from covertype.config import Settings, load_settings
from covertype.registry import ModelRegistry
from covertype.serving import metrics
from covertype.serving.champion import LoadedVersion, NoChampion, cached_version, load_champion
from covertype.serving.contract import EnforceContract, Operation, log_refusals_in_one_line, openapi_document
from covertype.serving.model_cache import ModelCache
from covertype.serving.prediction_log import LogPredictions
from covertype.serving.schema import (
    CovertypeRecord,
    ErrorBody,
    Explanation,
    ModelInfo,
    ModelListing,
    ModelSelector,
    Prediction,
    ReloadResult,
    records_field,
)
from covertype.serving.versions import VersionRefused, VersionSelector, version_listing

logger = logging.getLogger(__name__)


def first_champion(registry: ModelRegistry, settings: Settings) -> LoadedVersion | None:
    """The champion to start with, or None when training has not promoted one yet (predict answers 503).

    Loaded from the registry, and kept in the model cache if there is one. When the registry cannot
    be reached, the cached champion is served, saying so; without a cache (or with nothing cached)
    ``RegistryUnreachable`` is raised, for the service to answer 503 naming the registry.
    """
    cache = ModelCache(settings.model_cache_dir) if settings.model_cache_dir else None
    try:
        champion = load_champion(registry)
    except NoChampion as missing:
        logger.warning(str(missing))
        return None
    except (MlflowException, OSError) as error:  # OSError: requests' connection errors among them
        unreachable = RegistryUnreachable(registry, error)
        cached = cache.load() if cache else None
        if cached is None:
            raise unreachable from error
        model, info = cached
        logger.warning("%s; serving the cached version %s", unreachable, info.version)
        update = {"source": f"local cache: {unreachable}", "loaded_at": datetime.now(tz=UTC)}
        champion = cached_version(model, info.model_copy(update=update))
    else:
        if cache:
            cache.store(champion.model.get(), champion.info)
    logger.info(
        "serving %s version %s (%s, from %s)",
        registry.model_name,
        champion.info.version,
        champion.info.prediction_path,
        champion.info.source,
    )
    metrics.record_serving(champion.info)
    return champion


class RegistryUnreachable(RuntimeError):
    """The registry could not be asked for the champion."""

    def __init__(self, registry: ModelRegistry, error: Exception) -> None:
        super().__init__(
            f"the registry at {registry.registry_uri} could not be reached ({type(error).__name__}: {error})"
        )


#: This process's settings, read once when BentoML imports the service.
SETTINGS = load_settings()
# This process is the service: its MLflow client gives up on an unreachable registry after the settings'
# bounded retries, not MLflow's four minutes (the variables, when set, are where the settings come from).
os.environ.update(SETTINGS.mlflow_http_environment())
Records = records_field(SETTINGS.max_records_per_request)
#: Requests of at most this many records are answered on the event loop: a thread costs more.
INLINE_UP_TO_RECORDS = 16
#: The GET routes next to BentoML's POST APIs (its own documents and pages stay BentoML's).
routes = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
LISTING_PATH = "/models"
#: The answers' serialiser. BentoML's own output path derives the answer type's JSON schema and walks
#: every answer again on each request: returning the bytes cut our CPU per 100-record request by ~15%.
ANSWERS = TypeAdapter(list[Prediction])


def refusal(status: int, message: str) -> JSONResponse:
    """An answer with an ``ErrorBody``; BentoML sends a returned response as it is."""
    return JSONResponse(ErrorBody(error=message).model_dump(mode="json", exclude_none=True), status)


@bentoml.service(
    name="covertype",
    workers=1,
    resources={"cpu": "1"},
    traffic={"timeout": 60},
    metrics={"enabled": True},
)
@bentoml.asgi_app(routes)
class CovertypeClassifier:
    """Predicts the forest cover type of records with the registry's current champion."""

    def __init__(self, settings: Settings | None = None) -> None:
        """``settings``: the process's own (BentoML starts the service without arguments)."""
        settings = settings or SETTINGS
        self._registry = ModelRegistry.from_settings(settings)
        self._cache = ModelCache(settings.model_cache_dir) if settings.model_cache_dir else None
        self._unreachable: str | None = None  # why there is no champion, when the registry is the reason
        try:
            self._champion: LoadedVersion | None = first_champion(self._registry, settings)
        except RegistryUnreachable as unreachable:
            logger.error("%s; no cached champion: answering 503 until it answers", unreachable)
            self._champion, self._unreachable = None, f"{unreachable}; no model to serve until it answers"
        self._versions = VersionSelector(self._registry, settings.version_cache_size)
        self._reload_lock = threading.Lock()
        self._failed_version: str | None = None
        self._stopping = threading.Event()
        poll_seconds = settings.champion_poll_seconds
        if poll_seconds > 0:
            threading.Thread(
                target=self._follow_champion, args=(poll_seconds,), name="champion-watcher", daemon=True
            ).start()

    @bentoml.api
    async def predict(self, records: Records, model: ModelSelector = None) -> list[Prediction]:
        """One prediction per record, in order, each naming the version that answered; a single record
        object is answered as a list of one. ``model``: an alias or a version number (default: the
        champion); one that names no version gets 404, one whose model cannot be loaded 410.
        """
        try:
            version = await self._version(model)
        except VersionRefused as refused:
            return refusal(refused.status, str(refused))  # type: ignore[return-value]
        if len(records) <= INLINE_UP_TO_RECORDS:  # nothing to wait for: answered now, without a thread
            answers = self._answers(version, records)
        else:
            answers = await asyncio.to_thread(self._answers, version, records)
        return Response(answers, media_type="application/json")  # type: ignore[return-value]

    @bentoml.api
    async def explain(self, records: Records, model: ModelSelector = None) -> list[Explanation]:
        """Why each record gets its class: the predicted class, the base value and each of the 12 fields'
        contribution to the model's output for that class (exact TreeSHAP), in order. The body, limits
        and refusals are ``predict``'s; the first explanation of a version loads its model's trees.
        """
        try:
            version = await self._version(model)
        except VersionRefused as refused:
            return refusal(refused.status, str(refused))  # type: ignore[return-value]
        try:  # the model's trees: loaded on the version's first explanation
            await asyncio.to_thread(version.explainer.get)
        except Exception as error:  # pruned or unreadable artifacts, a model TreeSHAP does not take
            logger.exception("version %s cannot be explained", version.info.version)
            message = (
                f"version {version.info.version} of {self._registry.model_name} cannot be explained: its "
                f"model could not be loaded for TreeSHAP ({type(error).__name__}: {error})"
            )
            return refusal(410, message)  # type: ignore[return-value]
        return await asyncio.to_thread(version.explain, records)

    async def _version(self, model: str | None) -> LoadedVersion:
        """The version ``model`` names (the champion by default); 503 without a champion yet."""
        version = self._champion
        if model is not None:  # resolving it may ask the registry or load a model: not on the event loop
            version = await asyncio.to_thread(self._versions.select, model, self._champion)
        if version is None:  # a refusal, not an exception: BentoML would log a traceback for a 503
            raise VersionRefused(503, self._unreachable or str(NoChampion(self._registry)))
        return version

    @staticmethod
    def _answers(version: LoadedVersion, records: Sequence[CovertypeRecord]) -> bytes:
        """The answer's JSON: the one place a request's records, probabilities and answering version
        are all known."""
        with metrics.MODEL_LATENCY.time():
            probabilities = version.probabilities(records)
        predictions = version.predictions(probabilities)
        metrics.count_predictions(predictions)
        return ANSWERS.dump_json(predictions)

    @routes.get(LISTING_PATH)
    def models(self) -> JSONResponse:
        """Every registered version, newest first: its aliases, training rows and test metrics."""
        try:
            listing = version_listing(self._registry)
        except Exception as error:  # an unreachable or failing registry: say so, not a 500
            logger.exception("listing the versions failed")
            message = f"the registry at {self._registry.registry_uri} could not list the versions ({error})"
            return refusal(503, message)
        return JSONResponse(listing.model_dump(mode="json"))

    @bentoml.api
    def model_info(self) -> ModelInfo:
        """The model version answering now: registry name, version, alias, run, metrics, dates."""
        if self._champion is None:
            return refusal(503, self._unreachable or str(NoChampion(self._registry)))  # type: ignore[return-value]
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
        """Load the alias's version if it is not the one served: what happened, and whether it failed (503).

        A version that failed to load is tried again only on request (``retry_failed``), so that the
        watcher does not reload a broken version at every check.
        """
        with self._reload_lock:
            current = self._champion
            serving = current.info if current else None
            now = f"version {serving.version}" if serving else "no model"
            version: str | None = None
            try:
                champion = self._registry.champion()
                if champion is None:
                    raise NoChampion(self._registry)
                version = str(champion.version)
                # A version served from the cache is loaded again from the registry once it answers.
                if current and serving and version == serving.version and serving.source == "registry":
                    self._champion = current.with_aliases(champion.aliases)  # other aliases may have moved
                    message = f"version {version} is still the champion; nothing to load"
                    return ReloadResult(reloaded=False, message=message, serving=self._champion.info), False
                if version == self._failed_version and not retry_failed:
                    message = f"version {version} failed to load; still serving {now}"
                    return ReloadResult(reloaded=False, message=message, serving=serving), True
                candidate = load_champion(self._registry, champion)
            except Exception as error:  # any registry, storage or deserialisation failure
                if not serving and isinstance(error, NoChampion):  # nothing trained yet: not a failure to log
                    return ReloadResult(reloaded=False, message=str(error), serving=None), True
                logger.exception("reload failed; still serving %s", now)
                self._failed_version = version
                alias = self._registry.describe(self._registry.champion_alias)
                message = f"loading {alias} failed ({type(error).__name__}: {error}); still serving {now}"
                return ReloadResult(reloaded=False, message=message, serving=serving), True
            self._champion, self._failed_version, self._unreachable = candidate, None, None
            if self._cache:
                self._cache.store(candidate.model.get(), candidate.info)
            metrics.record_serving(candidate.info, previous=serving)
            message = f"now serving version {candidate.info.version} (was {now})"
            logger.info(message)
            return ReloadResult(reloaded=True, message=message, serving=candidate.info), False


def contract_document() -> dict[str, Any]:
    """The service's OpenAPI document: each API's body and every answer it gives, status by status."""
    apis = CovertypeClassifier.apis
    refusals = {
        400: ("the body is not JSON or a field breaks the contract; detail names each problem", ErrorBody),
        413: ("the body is over the size limit, which the error names", ErrorBody),
        415: ("the body is not JSON", ErrorBody),
    }
    no_champion = ("no champion to serve yet: training has not promoted one", ErrorBody)
    predict, explain = apis["predict"], apis["explain"]
    model_info, reload = apis["model_info"], apis["reload"]
    version_refusals = {
        404: ("no registered version answers to `model`; the error names it", ErrorBody),
        410: ("the version `model` names is registered but its model cannot be loaded", ErrorBody),
        503: no_champion,
    }
    operations = {
        predict.route: Operation(
            predict.doc or "",
            predict.input_spec,
            {
                200: (
                    "one prediction per record, in order, naming the version that answered",
                    list[Prediction],
                ),
                **refusals,
                **version_refusals,
            },
        ),
        explain.route: Operation(
            explain.doc or "",
            explain.input_spec,
            {
                200: (
                    "one explanation per record, in order, naming the version that answered",
                    list[Explanation],
                ),
                **refusals,
                **version_refusals,
            },
        ),
        LISTING_PATH: Operation(
            CovertypeClassifier.inner.models.__doc__ or "",
            None,
            {
                200: ("the registered versions, newest first", ModelListing),
                503: ("the registry could not answer", ErrorBody),
            },
            method="get",
        ),
        model_info.route: Operation(
            model_info.doc or "",
            None,
            {200: ("the version answering", ModelInfo), **refusals, 503: no_champion},
        ),
        reload.route: Operation(
            reload.doc or "",
            None,
            {
                200: ("the version the alias points at is served", ReloadResult),
                **refusals,
                503: ("loading failed or there is nothing to load; serving names what answers", ReloadResult),
            },
        ),
    }
    return openapi_document(CovertypeClassifier.openapi_spec.asdict(), operations)


# Outermost first: the counter sees the contract's refusals too.
CovertypeClassifier.add_asgi_middleware(
    metrics.CountRejectedRequests, path=CovertypeClassifier.apis["predict"].route
)
CovertypeClassifier.add_asgi_middleware(
    EnforceContract,
    api_paths=frozenset(api.route for api in CovertypeClassifier.apis.values()),
    max_body_bytes=SETTINGS.max_request_bytes,
    limit_name=Settings.model_fields["max_request_bytes"].validation_alias,
    document=contract_document,
)
# Innermost: only the requests the contract let through, each answered record logged off the request path.
CovertypeClassifier.add_asgi_middleware(
    LogPredictions, path=CovertypeClassifier.apis["predict"].route, settings=SETTINGS
)
# A refused request is one WARNING line, not an ERROR with a traceback (covertype.serving.contract).
log_refusals_in_one_line()
