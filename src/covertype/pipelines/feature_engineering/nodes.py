"""Deduplication, validation, features and the train/test split; the catalog does all the I/O."""

from __future__ import annotations

import logging

import pandas as pd
import pandera.pandas as pa

from covertype.data.hashing import hash_positions, row_hashes
from covertype.data.schema import (
    API_COLUMNS,
    CATEGORICAL_COLUMNS,
    FEATURE_COLUMNS,
    NUMERIC_COLUMNS,
    RECORD_CONTRACT,
    TARGET_COLUMN,
    RecordContract,
)
from covertype.features import STORED_FEATURES, CovertypeFeatures

logger = logging.getLogger(__name__)

#: Typed as ``api_records_to_frame`` types a served record, so the models see what serving sends.
RECORD_TYPES = {
    **dict.fromkeys((*NUMERIC_COLUMNS, TARGET_COLUMN), "Int64"),
    **dict.fromkeys(CATEGORICAL_COLUMNS, "string"),
}


def deduplicate_rows(raw_rows: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct content (12 features + label), whatever batch or run served it."""
    rows = raw_rows.sort_values("id").loc[:, list(API_COLUMNS)].astype(RECORD_TYPES)
    distinct = rows.drop_duplicates(ignore_index=True)
    logger.info("%d raw rows, %d distinct", len(rows), len(distinct))
    return distinct


def validate_rows(rows: pd.DataFrame, contract: RecordContract = RECORD_CONTRACT) -> pd.DataFrame:
    """Refuse the frame if any row breaks the record contract that ingestion enforced: a corrupted store."""
    schema = pa.DataFrameSchema(
        {
            rule.name: (
                pa.Column("string", pa.Check.isin(rule.codes))
                if rule.codes
                else pa.Column("Int64", pa.Check.in_range(*rule.bounds), nullable=False)
            )
            for rule in contract
        },
        strict=True,
    )
    return schema.validate(rows, lazy=True)


def derive_features(rows: pd.DataFrame) -> pd.DataFrame:
    """The raw columns, the model features computed by the served transformer, and a content hash."""
    features = CovertypeFeatures().fit_transform(rows.loc[:, list(FEATURE_COLUMNS)])
    features.columns = list(STORED_FEATURES)
    return pd.concat([rows, features], axis=1).assign(row_hash=row_hashes(rows, FEATURE_COLUMNS))


def split_by_row_hash(features: pd.DataFrame, test_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test rows are those whose hash falls below ``test_fraction``: a row keeps its side as data grows.

    The hash covers the 12 features only, so identical records never sit on both sides.
    """
    is_test = hash_positions(features["row_hash"]) < test_fraction
    logger.info("%d training rows, %d test rows", int((~is_test).sum()), int(is_test.sum()))
    return features.loc[~is_test].reset_index(drop=True), features.loc[is_test].reset_index(drop=True)
