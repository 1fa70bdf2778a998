"""The feature transformer: one record in the batch API's types -> the model's numeric features."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from covertype.data.convert import api_records_to_frame
from covertype.data.schema import FEATURE_COLUMNS
from covertype.features import (
    FEATURE_SOURCES,
    MODEL_FEATURES,
    SOIL_FEATURES,
    WILDERNESS_FEATURES,
    CovertypeFeatures,
)

RECORD = ["2596", "51", "3", "258", "-12", "510", "221", "232", "148", "6279", "Rawah", "C7745", "5"]


@pytest.fixture
def records() -> pd.DataFrame:
    return api_records_to_frame([RECORD]).loc[:, list(FEATURE_COLUMNS)]


def test_a_served_record_becomes_every_model_feature_in_order(records):
    features = CovertypeFeatures().fit_transform(records)
    assert list(features.columns) == list(MODEL_FEATURES)
    assert features.dtypes.eq("float64").all()
    assert list(CovertypeFeatures().fit(records).get_feature_names_out()) == list(MODEL_FEATURES)


def test_derived_features_follow_the_soil_code_and_the_distances(records):
    row = CovertypeFeatures().fit_transform(records).iloc[0]
    assert (row["Soil_Climatic_Zone"], row["Soil_Geologic_Zone"]) == (7, 7)
    assert row["Soil_C7745"] == 1 and row.filter(regex=r"^Soil_C\d").sum() == 1
    assert row["Wilderness_Rawah"] == 1 and row.filter(like="Wilderness_").sum() == 1
    assert row["Elevation_Of_Hydrology"] == 2596 + 12
    assert row["Distance_To_Hydrology"] == pytest.approx(np.hypot(258, 12))
    assert row["Hydrology_Minus_Fire_Points"] == 6279 - 258


def test_plain_python_types_give_the_same_features_as_the_api_types(records):
    plain = records.astype({column: "int64" for column in FEATURE_COLUMNS[:10]}).astype(
        {"Wilderness_Area": object, "Soil_Type": object}
    )
    pd.testing.assert_frame_equal(
        CovertypeFeatures().transform(plain), CovertypeFeatures().transform(records)
    )


def test_unknown_codes_and_missing_numbers_become_missing_features_not_errors(records):
    odd = records.assign(
        Soil_Type=pd.array(["C9999"], dtype="string"), Elevation=pd.array([pd.NA], dtype="Int64")
    )
    row = CovertypeFeatures().fit_transform(odd).iloc[0]
    assert row.filter(regex=r"^Soil_C\d").sum() == 0
    assert np.isnan(row["Soil_Climatic_Zone"]) and np.isnan(row["Elevation"])


def test_a_frame_without_the_record_columns_is_refused(records):
    with pytest.raises(ValueError, match="Soil_Type"):
        CovertypeFeatures().fit(records.drop(columns="Soil_Type"))


def test_fitting_learns_nothing_from_the_data(records):
    """Stateless: a clone fitted on other rows transforms a record exactly the same way."""
    other = api_records_to_frame([[*RECORD[:10], "Cache", "C2702", "1"]]).loc[:, list(FEATURE_COLUMNS)]
    pd.testing.assert_frame_equal(
        clone(CovertypeFeatures()).fit(other).transform(records),
        CovertypeFeatures().fit(records).transform(records),
    )


def test_each_feature_names_exactly_the_record_fields_it_is_computed_from(records):
    """Changing one field changes exactly the features that name it as a source (the explanations' map)."""
    base = CovertypeFeatures().fit_transform(records).iloc[0]
    changes = {
        **{name: "1234" for name in FEATURE_COLUMNS[:10]},
        "Wilderness_Area": "Cache",
        "Soil_Type": "C4201",  # another climatic and geologic zone than C7745
    }
    for field, value in changes.items():
        row = [*RECORD]
        row[FEATURE_COLUMNS.index(field)] = value
        changed = CovertypeFeatures().fit_transform(api_records_to_frame([row]).loc[:, list(FEATURE_COLUMNS)])
        moved = {name for name in MODEL_FEATURES if changed.iloc[0][name] != base[name]}
        named = {name for name, sources in FEATURE_SOURCES.items() if field in sources}
        # A code's change moves its old and new one-hot columns only, not those of the other codes.
        assert moved <= named, field
        assert named - moved <= set(WILDERNESS_FEATURES) | set(SOIL_FEATURES), field
        assert moved, field
