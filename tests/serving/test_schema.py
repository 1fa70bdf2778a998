"""What the service accepts, and the frame it hands the model: the training contract, without a server."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from covertype.data.convert import api_records_to_frame
from covertype.data.schema import FEATURE_COLUMNS, SOIL_TYPES
from covertype.serving.records import records_to_frame
from covertype.serving.schema import CovertypeRecord, Records

ROWS = [
    ["2596", "51", "3", "258", "0", "510", "221", "232", "148", "6279", "Rawah", "C7745", "5"],
    ["3050", "7", "18", "170", "-12", "1400", "199", "205", "141", "2200", "Cache", "C8771", "7"],
]


def records(rows: list[list[str]]) -> list[dict[str, str]]:
    return [dict(zip(FEATURE_COLUMNS, row, strict=False)) for row in rows]


def test_the_openapi_schema_names_each_features_bounds_unit_and_codes():
    properties = CovertypeRecord.model_json_schema()["properties"]
    assert list(properties) == list(FEATURE_COLUMNS)
    assert properties["Vertical_Distance_To_Hydrology"] == {
        "title": "Vertical Distance To Hydrology", "type": "integer",
        "minimum": -2000, "maximum": 2000, "description": "metres",
    }  # fmt: skip
    assert properties["Soil_Type"]["enum"] == list(SOIL_TYPES)


def test_the_model_gets_the_columns_and_types_training_saw():
    validated = TypeAdapter(Records).validate_python(records(ROWS))
    expected = api_records_to_frame(ROWS).loc[:, list(FEATURE_COLUMNS)]
    served = records_to_frame(validated)
    assert served.dtypes.equals(expected.dtypes)
    assert served.equals(expected)


def test_one_record_is_a_batch_of_one():
    (single,) = TypeAdapter(Records).validate_python(records(ROWS[:1])[0])
    assert single.Soil_Type == "C7745"


@pytest.mark.parametrize("bad", [{"Soil_Type": "C1234"}, {"Slope": "3.5"}, {"Cover_Type": "5"}])
def test_unknown_codes_fractions_and_extra_fields_are_refused(bad):
    with pytest.raises(ValidationError):
        CovertypeRecord(**{**records(ROWS[:1])[0], **bad})
