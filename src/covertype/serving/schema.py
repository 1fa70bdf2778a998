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

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, create_model
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

#: A valid record, for examples, tests and benchmarks: the first row of UCI's Covertype data.
EXAMPLE_RECORD: dict[str, int | str] = {
    "Elevation": 2596, "Aspect": 51, "Slope": 3, "Horizontal_Distance_To_Hydrology": 258,
    "Vertical_Distance_To_Hydrology": 0, "Horizontal_Distance_To_Roadways": 510, "Hillshade_9am": 221,
    "Hillshade_Noon": 232, "Hillshade_3pm": 148, "Horizontal_Distance_To_Fire_Points": 6279,
    "Wilderness_Area": "Rawah", "Soil_Type": "C7745",
}  # fmt: skip


#: The setting that limits ``records``, as a refusal names it.
RECORDS_LIMIT_NAME = Settings.model_fields["max_records_per_request"].validation_alias


def records_field(max_records: int) -> Any:
    """The ``records`` of ``predict``: ``{...}`` or ``[{...}, ...]``, one to ``max_records`` of them.

    A single record object is a batch of one, so clients need not wrap it in a list; a list over
    the limit is refused before any record is validated, naming the setting.
    """

    def one_or_many(value: Any) -> Any:
        records = [value] if isinstance(value, dict) else value
        if isinstance(records, list) and len(records) > max_records:
            raise PydanticCustomError(
                "too_long",
                "at most {limit} records per request ({setting}), not {count}",
                {"limit": max_records, "setting": RECORDS_LIMIT_NAME, "count": len(records)},
            )
        return records

    many = Annotated[list[CovertypeRecord], Field(min_length=1, max_length=max_records)]
    return Annotated[many, BeforeValidator(one_or_many, json_schema_input_type=CovertypeRecord | many)]


#: ``records`` with the default limit of the settings (the service uses its process's own).
Records = records_field(Settings.model_fields["max_records_per_request"].default)


#: A version number (1 to 999,999,999) or an alias name as MLflow allows them.
SELECTOR_PATTERN = r"^(?:[1-9][0-9]{0,8}|[A-Za-z_][A-Za-z0-9_-]{0,63})$"
Selector = Annotated[str, StringConstraints(pattern=SELECTOR_PATTERN)]
VersionNumber = Annotated[int, Field(ge=1, le=999_999_999)]


def _number_as_text(value: Any) -> Any:
    """``7``, ``7.0`` and ``"7"`` name the same version (JSON Schema counts 7.0 as an integer, as the
    records' fields do); ``true`` names none (Python counts it as 1)."""
    if isinstance(value, bool):
        raise PydanticCustomError(
            "string_type", "Input should be an alias or a version number, not a boolean"
        )
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, int) else value


#: ``predict``'s ``model``: an alias such as ``challenger``, or a version number; null is the champion.
ModelSelector = Annotated[
    Selector | None,
    BeforeValidator(_number_as_text, json_schema_input_type=VersionNumber | Selector | None),
    Field(description="an alias (champion, challenger, ...) or a version number; absent: the champion"),
]


class Prediction(BaseModel):
    """The answer for one record: the most probable cover type, every class's probability, and the
    version that answered with the aliases pointing at it."""

    cover_type: int
    cover_type_name: str
    probabilities: dict[str, float] = Field(description="class name -> probability, in class order")
    model_version: str
    model_aliases: list[str] = Field(
        description="the aliases pointing at model_version: looked up now for a version asked for; for "
        "the champion, at the service's last check of its alias (COVERTYPE_CHAMPION_POLL_SECONDS)"
    )


class Explanation(BaseModel):
    """Why one record got its class: exact TreeSHAP contributions of its 12 fields to the model's output
    for that class; ``base_value`` plus every contribution equals ``value``."""

    cover_type: int
    cover_type_name: str
    output: Literal["probability", "raw_score"] = Field(
        description="what the trees add up for the class: a forest's probability, a booster's raw score "
        "(its softmax over the classes is the probability)"
    )
    value: float = Field(description="the model's output for the predicted class on this record")
    base_value: float = Field(description="the output's mean over the training data (what no field explains)")
    contributions: dict[str, float] = Field(
        description="field -> its contribution to the output: one-hot columns are summed into their "
        "field, an engineered feature is shared equally between the fields it is computed from"
    )
    model_version: str
    model_aliases: list[str]


class ModelInfo(BaseModel):
    """Which model version answers, where it came from and how it scored when it was trained."""

    name: str
    version: str
    alias: str | None = Field(description="the alias the service follows it through: the champion's, or null")
    aliases: list[str] = Field(description="every alias pointing at this version when it was last looked up")
    run_id: str | None
    metrics: dict[str, float]
    tags: dict[str, str]
    registered_at: datetime
    promoted_at: datetime | None = Field(description="the version's promotion time, when it was recorded")
    loaded_at: datetime
    prediction_path: str = Field(
        description="how answers are computed: onnxruntime (the converted model registration checked "
        "on the whole test split, see the serving_engine* tags) or the model's own model_predict_proba"
    )
    source: str = Field(
        "registry",
        description="where the model was loaded from: `registry`, or `local cache: ...` (with why) when "
        "the service started while the registry was unreachable",
    )


class VersionSummary(BaseModel):
    """One registered version as the listing shows it: its aliases, its training and its test scores."""

    version: str
    aliases: list[str]
    run_id: str | None
    training_rows: int | None = Field(description="the rows it was trained on, when training tagged them")
    test_metrics: dict[str, float] = Field(description="its training run's metrics on the test split")
    tags: dict[str, str]
    registered_at: datetime


class ModelListing(BaseModel):
    """Every registered version of the model, newest first, and which one is the champion."""

    name: str
    champion: str | None = Field(
        description="the champion's version number; null before training promoted one"
    )
    versions: list[VersionSummary]


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
