"""The code tables are complete and the 55 <-> 13 column conversion loses nothing."""

import pandas as pd
import pytest

from covertype.data.convert import api_records_to_frame, api_to_one_hot, one_hot_to_api
from covertype.data.schema import (
    API_COLUMNS,
    COVER_TYPE_NAMES,
    FEATURE_COLUMNS,
    ONE_HOT_COLUMNS,
    SOIL_TYPES,
    WILDERNESS_AREAS,
)
from covertype.data.source import load_covertype


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return load_covertype("sample")


def test_code_tables_are_complete():
    assert WILDERNESS_AREAS == ("Rawah", "Neota", "Commanche", "Cache")
    assert len(SOIL_TYPES) == 40 and len(set(SOIL_TYPES)) == 40
    assert (SOIL_TYPES[0], SOIL_TYPES[-1]) == ("C2702", "C8776")
    assert sorted(COVER_TYPE_NAMES) == list(range(1, 8))
    assert len(ONE_HOT_COLUMNS) == 55 and len(API_COLUMNS) == 13 and len(FEATURE_COLUMNS) == 12


def test_the_shipped_sample_is_the_documented_one(sample):
    assert sample.shape == (15_000, 55)
    assert sample["Cover_Type"].value_counts().sort_index().tolist() == [5487, 7292, 931, 67, 238, 466, 519]


def test_converting_the_sample_to_the_api_form_and_back_gives_the_same_rows(sample):
    api = one_hot_to_api(sample)
    assert list(api.columns) == list(API_COLUMNS)
    assert api.map(type).eq(str).all().all()
    assert set(api["Wilderness_Area"]) == set(WILDERNESS_AREAS)
    assert set(api["Soil_Type"]) <= set(SOIL_TYPES)
    pd.testing.assert_frame_equal(api_to_one_hot(api), sample)


def test_a_row_with_two_soil_types_is_refused(sample):
    broken = sample.head(3).copy()
    broken.loc[1, "Soil_Type1"] = 1
    with pytest.raises(ValueError, match="row 1: expected exactly one"):
        one_hot_to_api(broken)


def test_unknown_codes_are_refused_when_going_back_to_one_hot(sample):
    api = one_hot_to_api(sample.head(2))
    api.loc[0, "Soil_Type"] = "C9999"
    with pytest.raises(ValueError, match=r"unknown Soil_Type codes: \['C9999'\]"):
        api_to_one_hot(api)


def test_api_records_are_typed_and_keep_what_was_served():
    records = [
        ["2596", "51", "3", "258", "0", "510", "221", "232", "148", "6279", "Rawah", "C7745", "5"],
        ["2590", "56", "2.5", "212", "-6", "390", "220", "235", "151", "6225", "Rawah", "C7745"],
    ]
    frame = api_records_to_frame(records)
    assert frame.loc[0, "Elevation"] == 2596 and str(frame["Elevation"].dtype) == "Int64"
    assert frame.loc[0, "Soil_Type"] == "C7745" and str(frame["Soil_Type"].dtype) == "string"
    assert pd.isna(frame.loc[1, "Slope"]), "2.5 is not a whole number"
    assert pd.isna(frame.loc[1, "Cover_Type"]), "the short row lacks its label"
    assert frame.loc[1, "raw_record"].startswith('["2590"')
