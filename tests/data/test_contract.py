"""One record contract: ingestion, feature engineering and the service all follow RECORD_CONTRACT."""

from dataclasses import replace

import pandas as pd
import pandera.errors
import pytest
from pydantic import ValidationError

from covertype.data.convert import api_records_to_frame
from covertype.data.schema import API_COLUMNS, COVER_TYPE_NAMES, FEATURE_COLUMNS, RECORD_CONTRACT
from covertype.pipelines.feature_engineering.nodes import validate_rows
from covertype.pipelines.ingestion.nodes import flag_invalid_rows
from covertype.serving.schema import record_model

STEEP = ["2596", "51", "45", "258", "0", "510", "221", "232", "148", "6279", "Rawah", "C7745", "5"]
#: The shipped contract with one bound changed: slopes up to 30 degrees only.
GENTLE_SLOPES_ONLY = tuple(
    replace(rule, bounds=(0, 30)) if rule.name == "Slope" else rule for rule in RECORD_CONTRACT
)


def test_every_field_of_the_batch_api_has_one_rule():
    assert tuple(rule.name for rule in RECORD_CONTRACT) == API_COLUMNS
    for rule in RECORD_CONTRACT:
        assert (rule.bounds is None) == (rule.kind == "code") == bool(rule.codes), rule.name
    assert RECORD_CONTRACT[-1].bounds == (min(COVER_TYPE_NAMES), max(COVER_TYPE_NAMES)) == (1, 7)


def test_a_bound_changed_in_the_contract_changes_quarantine_store_validation_and_service():
    batch = api_records_to_frame([STEEP]).assign(
        group_number=1, batch_number=1, collected_at=pd.Timestamp("2026-11-23", tz="UTC")
    )
    assert flag_invalid_rows(batch)["problems"].iloc[0] == ""
    assert flag_invalid_rows(batch, GENTLE_SLOPES_ONLY)["problems"].iloc[0] == "Slope: 45 outside [0, 30]"

    stored = batch.loc[:, list(API_COLUMNS)]
    validate_rows(stored)
    with pytest.raises(pandera.errors.SchemaErrors, match="Slope"):
        validate_rows(stored, GENTLE_SLOPES_ONLY)

    record = dict(zip(FEATURE_COLUMNS, STEEP, strict=False))
    assert record_model()(**record).Slope == 45
    with pytest.raises(ValidationError, match="less than or equal to 30"):
        record_model(GENTLE_SLOPES_ONLY)(**record)
