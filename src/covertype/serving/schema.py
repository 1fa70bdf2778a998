"""What the service accepts and answers: typed, validated before any model code runs.

A record is one row of the batch API without its label: ten whole numbers within the physical
limits that ingestion also enforces (conf/base/parameters_ingestion.yml) and the two code columns
with the codes of covertype.data.schema. A bad field gets a 400 naming the field and the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from covertype.data.schema import SOIL_TYPES, WILDERNESS_AREAS

WildernessArea = Literal[WILDERNESS_AREAS]  # type: ignore[valid-type]
SoilType = Literal[SOIL_TYPES]  # type: ignore[valid-type]


class CovertypeRecord(BaseModel):
    """The 12 features of one 30 m x 30 m cell, in the batch API's form (codes, not one-hot)."""

    # Lax integers accept "2596" (the batch API serves strings) and refuse 1.5; unknown fields are refused.
    model_config = ConfigDict(extra="forbid")

    Elevation: int = Field(ge=0, le=4500, description="metres")
    Aspect: int = Field(ge=0, le=360, description="degrees azimuth")
    Slope: int = Field(ge=0, le=90, description="degrees")
    Horizontal_Distance_To_Hydrology: int = Field(ge=0, le=20000, description="metres")
    Vertical_Distance_To_Hydrology: int = Field(ge=-2000, le=2000, description="metres")
    Horizontal_Distance_To_Roadways: int = Field(ge=0, le=20000, description="metres")
    Hillshade_9am: int = Field(ge=0, le=255, description="index 0..255")
    Hillshade_Noon: int = Field(ge=0, le=255, description="index 0..255")
    Hillshade_3pm: int = Field(ge=0, le=255, description="index 0..255")
    Horizontal_Distance_To_Fire_Points: int = Field(ge=0, le=20000, description="metres")
    Wilderness_Area: WildernessArea
    Soil_Type: SoilType


def _one_or_many(value: Any) -> Any:
    """A single record object is a batch of one, so clients need not wrap it in a list."""
    return [value] if isinstance(value, dict) else value


#: The body of ``predict``: ``{"records": {...}}`` or ``{"records": [{...}, ...]}``.
Records = Annotated[list[CovertypeRecord], BeforeValidator(_one_or_many), Field(min_length=1)]


class Prediction(BaseModel):
    """The answer for one record: the most probable cover type and every class's probability."""

    cover_type: int
    cover_type_name: str
    probabilities: dict[str, float] = Field(description="class name -> probability, in class order")


class ModelInfo(BaseModel):
    """Which model version answers, where it came from and how it scored when it was trained."""

    name: str
    version: str
    alias: str
    run_id: str | None
    metrics: dict[str, float]
    tags: dict[str, str]
    registered_at: datetime
    promoted_at: datetime | None = Field(description="the version's promotion time, when it was recorded")
    loaded_at: datetime


class ReloadResult(BaseModel):
    """What ``reload`` did; on failure the service keeps the model it had and names it here."""

    reloaded: bool
    message: str
    serving: ModelInfo | None = Field(description="the version answering now; null before a first champion")
