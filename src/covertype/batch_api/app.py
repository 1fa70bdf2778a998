"""The HTTP face of the batch API, as the course serves it: ``/data`` and ``/restart_data_generation``."""

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel

from covertype.batch_api.rotation import BatchRotation, CollectionFinished


class Refusal(BaseModel):
    """FastAPI's body for an ``HTTPException``: why the request was refused."""

    detail: str


@dataclass(frozen=True)
class ServedData:
    """The rows an API serves and what they are; ``synthetic`` rows say so in every answer about them."""

    rows: Sequence[Sequence[str]]
    description: str = "rows given by the caller"
    synthetic: bool = False


def create_app(
    rotation: BatchRotation, clock: Callable[[], float] = time.time, served: ServedData | None = None
) -> FastAPI:
    """Build the API around a rotation; ``clock`` is injectable so tests move time without sleeping.

    ``served`` describes the rotation's rows in the greeting and ``/health``.
    """
    settings = rotation.settings
    described = served or ServedData(rotation.rows)
    marker = "SYNTHETIC data, for benchmarks only: " if described.synthetic else ""
    usage = f"GET /data?group_number=N with N in 1..{settings.groups}"
    app = FastAPI(
        title="Covertype batch API",
        description="Serves UCI Covertype to groups in batches that rotate every `min_update_seconds`.",
    )
    GroupNumber = Annotated[
        int, Query(ge=1, le=settings.groups, description=f"Your group number, 1..{settings.groups}")
    ]

    @app.get("/")
    def greeting() -> dict[str, str]:
        return {
            "message": f"{marker}Covertype batch API: {usage}",
            "data": described.description,
        }

    @app.get("/health")
    def health() -> dict[str, object]:
        return {
            "status": "ok",
            "synthetic": described.synthetic,
            "data": described.description,
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
