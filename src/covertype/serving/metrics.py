"""The service's domain metrics, exposed on its ``/metrics`` next to BentoML's own ``bentoml_*`` ones.

BentoML 1.4 runs its workers with ``PROMETHEUS_MULTIPROC_DIR`` set and serves ``/metrics`` from that
folder, so ``prometheus_client`` metrics made in a worker appear there, summed over workers
(``bentoml.metrics``, the older proxy for the same client, is deprecated in BentoML 1.4.39). An
``Info`` metric does not work in that mode: the model version is an info-style gauge instead (1 for
the version served, 0 for one served before in this process; multiprocess files cannot drop a series).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from covertype.data.schema import COVER_TYPE_NAMES
from covertype.serving.schema import ModelInfo, Prediction

#: Why a prediction request was refused, by the status it was answered with.
REJECTION_REASONS = {
    400: "invalid_input",
    404: "unknown_version",
    410: "version_not_loadable",
    413: "request_too_large",
    415: "unsupported_media_type",
    503: "no_champion",
}
#: Any other error status: the model or the service failed.
OTHER_REJECTION = "error"

PREDICTIONS = Counter(
    "covertype_predictions_total", "Records predicted, by predicted cover type.", ["cover_type"]
)
MODEL_INFO = Gauge(
    "covertype_model_info",
    "The registry model version serving predictions (1), or served before in this process (0), "
    "and the route its answers take (covertype.serving.engine).",
    ["name", "version", "alias", "prediction_path"],
    multiprocess_mode="livemax",
)
MODEL_LATENCY = Histogram(
    "covertype_model_latency_seconds",
    "Time of one model call on one request's records (frame, probabilities, answers), without HTTP.",
)
REJECTED_REQUESTS = Counter(
    "covertype_rejected_requests_total", "Prediction requests answered with an error, by reason.", ["reason"]
)

# Known label values start at 0, so that rate() and increase() see their first event.
for _name in COVER_TYPE_NAMES.values():
    PREDICTIONS.labels(cover_type=_name)
for _reason in (*REJECTION_REASONS.values(), OTHER_REJECTION):
    REJECTED_REQUESTS.labels(reason=_reason)


def count_predictions(predictions: list[Prediction]) -> None:
    for prediction in predictions:
        PREDICTIONS.labels(cover_type=prediction.cover_type_name).inc()


def record_serving(current: ModelInfo, previous: ModelInfo | None = None) -> None:
    """``current`` answers from now on; ``previous``, if any, no longer does."""
    for info, value in ((previous, 0), (current, 1)):
        if info is not None:
            MODEL_INFO.labels(
                name=info.name, version=info.version, alias=info.alias, prediction_path=info.prediction_path
            ).set(value)


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class CountRejectedRequests:
    """ASGI middleware counting the requests to ``path`` answered with an error status, by reason.

    BentoML validates a body before the API method runs and answers 400 itself, so the method never
    sees an invalid request: the response status is where every rejection shows.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                reason = REJECTION_REASONS.get(message["status"], OTHER_REJECTION)
                REJECTED_REQUESTS.labels(reason=reason).inc()
            await send(message)

        await self.app(scope, receive, counting_send)
