"""A SYNTHETIC full-volume Covertype: the real sample's training split resampled to any size.

For benchmarks and scale tests when the full UCI set cannot be downloaded. Rows are drawn only from
the real rows of the training side of the hash split (the split feature engineering makes, with
its ``test_fraction``), so the real test-side rows stay unseen: accuracy is measured on them
(``real_holdout``), never on synthetic rows. How a row is made:

- every real training row once, then draws with replacement within each Cover_Type, so the class
  proportions of the training split are kept;
- each drawn copy gets integer jitter on every integer field: uniform in ±5% of the field's standard
  deviation in the training split (at least ±1), clipped to the field's bounds in the record
  contract; codes and the class are kept;
- duplicates, and rows equal in their 12 features to a real test row, are drawn again; the result is
  shuffled, so that every batch holds every class.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from covertype.data.hashing import in_test_split
from covertype.data.schema import API_COLUMNS, FEATURE_COLUMNS, RECORD_CONTRACT, TARGET_COLUMN

#: Jitter half-width, as a share of each integer field's standard deviation in the training split.
JITTER_SHARE_OF_STD = 0.05
#: How the served data says what it is, wherever it appears (API, logs, benchmark output).
SYNTHETIC_LABEL = "SYNTHETIC"


def split_sample(rows: pd.DataFrame, test_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The API-form rows on the training and the test side of feature engineering's hash split."""
    is_test = in_test_split(rows, FEATURE_COLUMNS, test_fraction)
    return rows.loc[~is_test].reset_index(drop=True), rows.loc[is_test].reset_index(drop=True)


def real_holdout(rows: pd.DataFrame, test_fraction: float) -> pd.DataFrame:
    """The real rows a resampling never draws from: where a model trained on it is scored."""
    return split_sample(rows, test_fraction)[1]


def jitter_widths(training: pd.DataFrame) -> dict[str, int]:
    """Each integer field's jitter half-width: 5% of its standard deviation, at least 1."""
    return {
        rule.name: max(1, round(JITTER_SHARE_OF_STD * training[rule.name].astype(int).std()))
        for rule in RECORD_CONTRACT
        if rule.kind == "integer"
    }


def _class_counts(labels: pd.Series, size: int) -> pd.Series:
    """Rows per class for ``size`` rows in the proportions of ``labels`` (largest remainders)."""
    exact = labels.value_counts(normalize=True).sort_index() * size
    counts = exact.astype(int)
    shortfall = size - int(counts.sum())
    counts[(exact - counts).sort_values(ascending=False).index[:shortfall]] += 1
    return counts


def _jittered(drawn: pd.DataFrame, widths: dict[str, int], rng: np.random.Generator) -> pd.DataFrame:
    bounds = {rule.name: rule.bounds for rule in RECORD_CONTRACT}
    jittered = drawn.copy()
    for name, width in widths.items():
        low, high = bounds[name]
        values = drawn[name].to_numpy(dtype="int64") + rng.integers(-width, width + 1, len(drawn))
        jittered[name] = np.clip(values, low, high)
    return jittered


def _without(rows: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """The rows whose 12 features are none of ``features``' rows."""
    found = rows.merge(features.drop_duplicates(), on=list(FEATURE_COLUMNS), how="left", indicator=True)
    return rows.loc[(found["_merge"] == "left_only").to_numpy()]


def resample_training_split(rows: pd.DataFrame, size: int, test_fraction: float, seed: int) -> pd.DataFrame:
    """``size`` SYNTHETIC rows in the API's 13-string form, made from the training split of ``rows``."""
    training, test = split_sample(rows, test_fraction)
    typed = training.astype(dict.fromkeys(_NUMBER_COLUMNS, "int64")).drop_duplicates(ignore_index=True)
    widths = jitter_widths(training)
    unseen = test.astype(dict.fromkeys(_NUMBER_COLUMNS, "int64")).loc[:, list(FEATURE_COLUMNS)]
    rng = np.random.default_rng(seed)
    parts = []
    for label, count in _class_counts(typed[TARGET_COLUMN], size).items():
        real = typed[typed[TARGET_COLUMN] == label]
        chosen = real.iloc[rng.permutation(len(real))[:count]]
        while len(chosen) < count:
            drawn = real.iloc[rng.integers(0, len(real), count - len(chosen))]
            made = _jittered(drawn, widths, rng)
            made = _without(made, unseen)
            chosen = pd.concat([chosen, made], ignore_index=True).drop_duplicates(ignore_index=True)
        parts.append(chosen)
    resampled = pd.concat(parts, ignore_index=True)
    resampled = resampled.iloc[rng.permutation(len(resampled))].reset_index(drop=True)
    return _as_api_strings(resampled)


#: The integer fields and the class: the columns resampling reads as numbers.
_NUMBER_COLUMNS = (*(rule.name for rule in RECORD_CONTRACT if rule.kind == "integer"), TARGET_COLUMN)


def _as_api_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers as the API's strings, one shared string object per distinct value (a small footprint)."""
    served = frame.loc[:, list(API_COLUMNS)].copy()
    for name in _NUMBER_COLUMNS:
        values = served[name].to_numpy(dtype="int64")
        low = int(values.min())
        texts = np.array([str(value) for value in range(low, int(values.max()) + 1)], dtype=object)
        served[name] = texts[values - low]
    return served.astype(object)
