"""The synthetic source: the real training split resampled, class shares kept, the test split untouched."""

import pandas as pd
import pytest

from covertype.data.resample import jitter_widths, real_holdout, resample_training_split, split_sample
from covertype.data.schema import API_COLUMNS, FEATURE_COLUMNS, RECORD_CONTRACT, TARGET_COLUMN


@pytest.fixture(scope="module")
def sample(api_rows) -> pd.DataFrame:
    return pd.DataFrame(api_rows, columns=API_COLUMNS)


def test_resampling_keeps_the_class_shares_and_bounds_and_leaves_the_test_split_out(sample):
    training, _ = split_sample(sample, 0.2)
    resampled = resample_training_split(sample, 40_000, test_fraction=0.2, seed=3)
    assert len(resampled) == 40_000 and not resampled.duplicated().any()
    shares = resampled[TARGET_COLUMN].astype(int).value_counts(normalize=True).sort_index()
    expected = training[TARGET_COLUMN].astype(int).value_counts(normalize=True).sort_index()
    assert (shares - expected).abs().max() < 1e-4
    for rule in RECORD_CONTRACT:
        if rule.kind == "integer":
            values = resampled[rule.name].astype(int)
            assert values.between(*rule.bounds).all(), rule.name
    assert resampled.merge(real_holdout(sample, 0.2), on=list(FEATURE_COLUMNS)).empty
    real_training = resampled.merge(training.drop_duplicates(), on=list(API_COLUMNS))
    assert len(real_training) == len(training.drop_duplicates()), "every real training row is served once"


def test_the_jitter_is_a_small_share_of_each_fields_spread(sample):
    widths = jitter_widths(split_sample(sample, 0.2)[0])
    assert set(widths) == {rule.name for rule in RECORD_CONTRACT if rule.kind == "integer"}
    assert 1 <= widths["Slope"] < widths["Elevation"] < 50


def test_the_same_seed_gives_the_same_rows(sample):
    first = resample_training_split(sample, 13_000, test_fraction=0.2, seed=1)
    assert first.equals(resample_training_split(sample, 13_000, test_fraction=0.2, seed=1))
