"""The HTTP face of the batch API, as the course serves it: ``/data`` and ``/restart_data_generation``."""

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel

from covertype.batch_api.rotation import BatchRotation, CollectionFinished


class Refusal(BaseModel):
    """FastAPI's body for an ``HTTPException``: why the request was refused."""

    detail: str


def create_app(rotation: BatchRotation, clock: Callable[[], float] = time.time) -> FastAPI:
    """Build the API around a rotation; ``clock`` is injectable so tests move time without sleeping."""
    settings = rotation.settings
    app = FastAPI(
        title="Covertype batch API",
        description="Serves UCI Covertype to groups in batches that rotate every `min_update_seconds`.",
    )
    GroupNumber = Annotated[
        int, Query(ge=1, le=settings.groups, description=f"Your group number, 1..{settings.groups}")
    ]

    @app.get("/")
    def greeting() -> dict[str, str]:
        return {"message": f"Covertype batch API: GET /data?group_number=N with N in 1..{settings.groups}"}

    @app.get("/health")
    def health() -> dict[str, object]:
        return {
            "status": "ok",
            "rows": len(rotation.rows),
            "batches": settings.batches,
            "batch_size": rotation.batch_size,
            "rows_per_request": rotation.rows_per_request or "whole batch",
            "min_update_seconds": settings.min_update_seconds,
            "groups": [asdict(state) for state in rotation.group_states(clock())],
        }

    @app.get(
        "/data", responses={400: {"model": Refusal, "description": "the group has collected every batch"}}
    )
    def data(group_number: GroupNumber) -> dict[str, object]:
        try:
            served = rotation.serve(group_number, clock())
        except CollectionFinished as finished:
            raise HTTPException(status_code=400, detail=str(finished)) from None
        return {"group_number": served.group_number, "batch_number": served.batch_number, "data": served.rows}

    @app.get("/restart_data_generation")
    def restart_data_generation(group_number: GroupNumber) -> list[str]:
        rotation.restart(group_number)
        return ["ok"]

    return app
