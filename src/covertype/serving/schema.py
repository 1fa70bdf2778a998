"""What the service accepts and answers: typed, validated before any model code runs.

A record is one row of the batch API without its label, built from the record contract
(``covertype.data.schema.RECORD_CONTRACT``) that ingestion also enforces: ten whole numbers within
their bounds and the two code columns with their known codes. A bad field gets a 400 naming the
field and the reason (``ErrorBody``).

Whole numbers are JSON integers, or strings of digits such as ``"2596"`` because the batch API serves
its rows as strings; a float is taken only when it has no fraction (``12.0``), and a boolean never,
although Python counts ``true`` as 1.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model
from pydantic_core import PydanticCustomError

from covertype.config import Settings
from covertype.data.schema import RECORD_CONTRACT, RecordContract


def _not_a_boolean(value: Any) -> Any:
    """Refuse ``true``/``false`` where a whole number is due: lax integers would read them as 1 and 0."""
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer, not a boolean")
    return value


#: A measurement: an integer, a string of digits or a float without fraction; never a boolean.
WholeNumber = Annotated[int, BeforeValidator(_not_a_boolean)]


def record_model(contract: RecordContract = RECORD_CONTRACT) -> type[BaseModel]:
    """The request model of one record: the contract's features with their bounds, codes and units."""
    fields: dict[str, Any] = {
        rule.name: (
            (Literal[rule.codes], Field(description=rule.description))
            if rule.codes
            else (WholeNumber, Field(ge=rule.bounds[0], le=rule.bounds[1], description=rule.description))
        )
        for rule in contract
        if rule.kind != "label"
    }
    return create_model(
        "CovertypeRecord",
        __doc__="The 12 features of one 30 m x 30 m cell, in the batch API's form (codes, not one-hot).",
        # Lax integers accept "2596" (the batch API serves strings) and refuse 1.5; unknown fields too.
        __config__=ConfigDict(extra="forbid"),
        **fields,
    )


CovertypeRecord = record_model()


def _one_or_many(value: Any) -> Any:
    """A single record object is a batch of one, so clients need not wrap it in a list."""
    return [value] if isinstance(value, dict) else value


def records_field(max_records: int) -> Any:
    """The ``records`` of ``predict``: ``{...}`` or ``[{...}, ...]``, one to ``max_records`` of them."""
    many = Annotated[list[CovertypeRecord], Field(min_length=1, max_length=max_records)]
    return Annotated[many, BeforeValidator(_one_or_many, json_schema_input_type=CovertypeRecord | many)]


#: ``records`` with the default limit of the settings (the service uses its process's own).
Records = records_field(Settings.model_fields["max_records_per_request"].default)


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
    prediction_path: str = Field(
        description="how answers are computed: a fast route proven equal on the test split "
        "(numpy_tree_walk, lightgbm_booster) or the model's own model_predict_proba"
    )


class ReloadResult(BaseModel):
    """What ``reload`` did; on failure the service keeps the model it had and names it here."""

    reloaded: bool
    message: str
    serving: ModelInfo | None = Field(description="the version answering now; null before a first champion")


class ValidationIssue(BaseModel):
    """One reason a body was refused, as pydantic reports it: where (``loc``), what (``type``), why."""

    model_config = ConfigDict(extra="allow")

    type: str
    loc: list[str | int] = Field(description="the path to the bad value, e.g. records, 1, Slope")
    msg: str


class ErrorBody(BaseModel):
    """Every refusal (4xx, 503): a message, and for an invalid body the list of what was wrong."""

    error: str
    detail: list[ValidationIssue] | None = Field(
        None, description="present when the body failed validation: one entry per problem"
    )
