"""Where one single-record ``/predict`` goes: each stage of the service timed in-process.

The stages BentoML runs for a request, each measured alone on the current champion (median of
``--repeat`` runs): our two ASGI middlewares (covertype.serving.metrics, covertype.serving.contract),
BentoML's validation of the body into the request model, the model call by the route the version
serves through (``prediction_path``: the engine, covertype.serving.engine) and by the model's own
``predict_proba``, the answers, and their serialisation. What HTTP and the rest of the framework
cost is the BentoML echo's p50 in ``make bench-serving``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable

from pydantic import TypeAdapter
from rich.console import Console
from rich.table import Table

from covertype.config import Settings, load_settings
from covertype.registry import ModelRegistry
from covertype.serving.champion import OwnPredictProba, load_champion
from covertype.serving.contract import EnforceContract
from covertype.serving.metrics import CountRejectedRequests
from covertype.serving.schema import EXAMPLE_RECORD, Prediction, Records

BODY = json.dumps({"records": EXAMPLE_RECORD}).encode()


def median_ms(call: Callable[[], object], repeat: int) -> float:
    call()
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return 1000 * statistics.median(seconds)


async def median_ms_async(call: Callable[[], Awaitable[object]], repeat: int) -> float:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        seconds.append(time.perf_counter() - started)
    return 1000 * statistics.median(seconds)


async def middleware_ms(repeat: int) -> float:
    """Both ASGI middlewares around an app that answers at once, for one JSON body."""

    async def app(scope, receive, send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"[]"})

    settings = Settings()
    wrapped = CountRejectedRequests(
        EnforceContract(app, frozenset({"/predict"}), settings.max_request_bytes, "limit", dict), "/predict"
    )
    scope = {
        "type": "http",
        "path": "/predict",
        "method": "POST",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())],
    }

    async def receive() -> dict:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict) -> None:
        return None

    return await median_ms_async(lambda: wrapped(scope, receive, send), repeat)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="serving_profile", description=__doc__)
    parser.add_argument("--repeat", type=int, default=1000)
    args = parser.parse_args(argv)
    settings = load_settings()
    registry = ModelRegistry.from_settings(settings)
    champion = load_champion(registry)
    own = OwnPredictProba(registry.load_model(registry.version(champion.info.version)))
    records = TypeAdapter(Records).validate_python([EXAMPLE_RECORD])
    answers = TypeAdapter(list[Prediction])
    predictions = champion.predict(records)
    request_model = TypeAdapter(dict[str, Records])

    stages = {
        "ASGI middlewares (contract, rejected counter)": asyncio.run(middleware_ms(args.repeat)),
        "validation (JSON body -> records)": median_ms(
            lambda: request_model.validate_json(BODY), args.repeat
        ),
        "model call, own predict_proba (frame, pipeline, trees)": median_ms(
            lambda: own.record_probabilities(records), args.repeat
        ),
        f"model call, served route ({champion.info.prediction_path})": median_ms(
            lambda: champion.probabilities(records), args.repeat
        ),
        "answers (Prediction objects)": median_ms(lambda: champion.predict(records), args.repeat)
        - median_ms(lambda: champion.probabilities(records), args.repeat),
        "serialisation (answers -> JSON)": median_ms(lambda: answers.dump_json(predictions), args.repeat),
    }
    table = Table(title=f"one record through {registry.model_name} v{champion.info.version}, in-process")
    table.add_column("stage")
    table.add_column("median (ms)", justify="right")
    for stage, ms in stages.items():
        table.add_row(stage, f"{ms:.3f}")
    Console().print(table)


if __name__ == "__main__":
    main()
