"""Feature engineering nodes: deduplicate by content, validate, derive features, split by row hash."""

import pandas as pd
import pandera.errors
import pytest

from covertype.data.convert import api_records_to_frame, one_hot_to_api
from covertype.data.schema import API_COLUMNS
from covertype.data.source import load_covertype
from covertype.features import STORED_FEATURES
from covertype.pipelines.feature_engineering.nodes import (
    deduplicate_rows,
    derive_features,
    split_by_row_hash,
    validate_rows,
)


@pytest.fixture(scope="module")
def stored_rows() -> pd.DataFrame:
    """3,000 sample rows as the raw table holds them: 13 columns, batch columns and an id."""
    api = one_hot_to_api(load_covertype("sample")).head(3_000)
    frame = api_records_to_frame(api.to_numpy().tolist()).drop(columns="raw_record")
    return frame.astype(
        {column: "int64" for column in frame.columns if str(frame[column].dtype) == "Int64"}
    ).assign(id=range(1, len(frame) + 1), batch_number=1, group_number=1, row_key="k")


def test_the_same_content_served_in_two_batches_counts_once(stored_rows):
    again = stored_rows.head(500).assign(batch_number=2, id=lambda f: f["id"] + 10_000)
    distinct = deduplicate_rows(pd.concat([stored_rows, again]))
    assert len(distinct) == stored_rows[list(API_COLUMNS)].drop_duplicates().shape[0]
    assert list(distinct.columns) == list(API_COLUMNS)
    assert str(distinct["Elevation"].dtype) == "Int64" and str(distinct["Soil_Type"].dtype).startswith("str")


def test_valid_rows_pass_validation_unchanged(stored_rows):
    rows = deduplicate_rows(stored_rows)
    pd.testing.assert_frame_equal(validate_rows(rows), rows)


def test_a_corrupted_store_is_refused_with_every_problem_named(stored_rows):
    rows = deduplicate_rows(stored_rows)
    rows.loc[0, "Slope"] = 400
    rows.loc[1, "Soil_Type"] = "C0000"
    with pytest.raises(pandera.errors.SchemaErrors, match="Slope") as error:
        validate_rows(rows)
    assert "Soil_Type" in str(error.value)


def test_features_sit_beside_the_raw_columns_with_a_content_hash(stored_rows):
    features = derive_features(deduplicate_rows(stored_rows))
    assert set(STORED_FEATURES) <= set(features.columns) and set(API_COLUMNS) <= set(features.columns)
    assert features["row_hash"].str.fullmatch("[0-9a-f]{64}").all()


def test_the_split_holds_out_about_the_fraction_and_a_row_keeps_its_side_as_data_grows(stored_rows):
    features = derive_features(deduplicate_rows(stored_rows))
    small_train, small_test = split_by_row_hash(features.head(1_000), 0.2)
    train, test = split_by_row_hash(features, 0.2)
    assert len(test) / len(features) == pytest.approx(0.2, abs=0.03)
    assert set(small_test["row_hash"]) <= set(test["row_hash"])
    assert set(small_train["row_hash"]) <= set(train["row_hash"])
    assert not set(train["row_hash"]) & set(test["row_hash"])
