"""The floor of ``make bench-serving``: servers that validate our request and answer it without a model.

``EchoService`` is a BentoML service whose ``predict`` takes our request schema (``records``, one
record or many, validated as the service validates them) and answers the records back; ``fastapi_app``
is the same with FastAPI, run under uvicorn. Both ``predict`` methods are coroutines, BentoML's and
FastAPI's cheapest kind of endpoint (no worker thread), so the floor is the framework's own.
"""

from __future__ import annotations

import bentoml
from fastapi import FastAPI
from pydantic import BaseModel

from covertype.serving.schema import CovertypeRecord, Records


@bentoml.service(name="covertype-echo", workers=1, resources={"cpu": "1"})
class EchoService:
    """Our ``predict`` request in, the validated records out."""

    @bentoml.api
    async def predict(self, records: Records) -> list[CovertypeRecord]:
        return records


class PredictRequest(BaseModel):
    records: Records


fastapi_app = FastAPI(title="covertype-echo")


@fastapi_app.post("/predict")
async def predict(request: PredictRequest) -> list[CovertypeRecord]:
    """Our ``predict`` request in, the validated records out."""
    return request.records
