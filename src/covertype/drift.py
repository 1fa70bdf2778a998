"""Data drift: one statistical test per field, chosen as Evidently chooses it, and the dataset's verdict.

The one place each test is written: the ``monitoring`` pipeline (ingested batches, served traffic)
and the app's Data page (batch against batch) call ``compare``. Each test is a small registered
object (``TESTS``: name, what its statistic is, default threshold) and the choice per field is one
lookup (``SELECTION``) over the field's kind and the reference's size, as in Evidently's
``stattests`` (reference of at most 1,000 rows: KS for numbers, chi-square for categories, Z for two
values; larger: normalised Wasserstein distance for numbers, Jensen-Shannon distance for categories).
The tests are scipy's (the Wasserstein distance of integer fields is counted instead of sorted:
the same value, 20x faster at 465,000 rows); Evidently itself would add 26 runtime packages and
pin plotly below ours.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, norm, wasserstein_distance

from covertype.data.schema import CATEGORICAL_COLUMNS, FEATURE_COLUMNS

Kind = Literal["numeric", "categorical", "binary"]
#: Columns of a per-field report, in order.
FIELD_COLUMNS = ("field", "kind", "test", "statistic", "threshold", "drifted")


def _ks(reference: pd.Series, current: pd.Series) -> float:
    return float(ks_2samp(reference.to_numpy(float), current.to_numpy(float)).pvalue)


def _counts(reference: pd.Series, current: pd.Series) -> np.ndarray:
    """A 2 x k table of counts over the values seen in either sample (reference first)."""
    table = pd.concat(
        [reference.value_counts(), current.value_counts()], axis=1, keys=["reference", "current"]
    )
    return table.fillna(0).to_numpy(float).T


def _chi_square(reference: pd.Series, current: pd.Series) -> float:
    """p-value of the chi-square test that both samples share one distribution of values."""
    counts = _counts(reference, current)
    if counts.shape[1] < 2:
        return 1.0
    return float(chi2_contingency(counts, correction=False).pvalue)


def _z(reference: pd.Series, current: pd.Series) -> float:
    """p-value of the two-proportion Z-test on a two-valued field (the first value's share)."""
    counts = _counts(reference, current)
    if counts.shape[1] < 2:
        return 1.0
    sizes = counts.sum(axis=1)
    shares = counts[:, 0] / sizes
    pooled = counts[:, 0].sum() / sizes.sum()
    spread = np.sqrt(pooled * (1 - pooled) * (1 / sizes[0] + 1 / sizes[1]))
    if spread == 0:
        return 1.0
    return float(2 * norm.sf(abs(shares[0] - shares[1]) / spread))


#: Integer samples spanning at most this many units get their CDFs by counting, not by sorting.
COUNTED_SPAN = 1_000_000


def counted_wasserstein_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """scipy's ``wasserstein_distance``, computed by counting for integer samples of a bounded span.

    Between consecutive integers both empirical CDFs are flat, so the distance (the area between
    them) is the sum of their gaps at each integer: O(n) with ``bincount``, where scipy sorts both
    samples (9 in 10 of a report's time at 465,000 reference rows).
    """
    low, high = min(reference.min(), current.min()), max(reference.max(), current.max())
    integers = np.array_equal(reference, np.round(reference)) and np.array_equal(current, np.round(current))
    if not integers or high - low > COUNTED_SPAN:
        return float(wasserstein_distance(reference, current))
    cdfs = [
        np.cumsum(np.bincount((sample - low).astype(np.int64), minlength=int(high - low) + 1)) / len(sample)
        for sample in (reference, current)
    ]
    return float(np.abs(cdfs[0] - cdfs[1])[:-1].sum())


def _wasserstein(reference: pd.Series, current: pd.Series) -> float:
    """Wasserstein distance in units of the reference's standard deviation (Evidently's norm)."""
    values = reference.to_numpy(float)
    spread = np.std(values) or 0.001  # a constant reference: Evidently's floor
    return counted_wasserstein_distance(values, current.to_numpy(float)) / spread


def _jensen_shannon(reference: pd.Series, current: pd.Series) -> float:
    counts = _counts(reference, current)
    return float(jensenshannon(counts[0] / counts[0].sum(), counts[1] / counts[1].sum()))


@dataclass(frozen=True)
class StatTest:
    """A drift test: ``p_value`` tests drift below the threshold, ``distance`` tests at or above it."""

    name: str
    statistic: Literal["p_value", "distance"]
    threshold: float
    compute: Callable[[pd.Series, pd.Series], float] = field(repr=False)

    def drifted(self, value: float, threshold: float) -> bool:
        return value < threshold if self.statistic == "p_value" else value >= threshold


TESTS: dict[str, StatTest] = {
    test.name: test
    for test in (
        StatTest("ks", "p_value", 0.05, _ks),
        StatTest("chisquare", "p_value", 0.05, _chi_square),
        StatTest("z", "p_value", 0.05, _z),
        StatTest("wasserstein", "distance", 0.1, _wasserstein),
        StatTest("jensenshannon", "distance", 0.1, _jensen_shannon),
    )
}
#: (the reference is small, the field's kind) -> test name: Evidently's choice, as data.
SELECTION: dict[tuple[bool, Kind], str] = {
    (True, "numeric"): "ks",
    (True, "categorical"): "chisquare",
    (True, "binary"): "z",
    (False, "numeric"): "wasserstein",
    (False, "categorical"): "jensenshannon",
    (False, "binary"): "jensenshannon",
}


@dataclass(frozen=True)
class DriftSettings:
    """``monitoring.drift`` in parameters_monitoring.yml: the choice of tests and the thresholds."""

    #: A reference of at most this many rows is "small": p-value tests; above it, distances.
    small_reference_rows: int = 1000
    #: A number field with at most this many distinct reference values is tested as a category.
    categorical_max_distinct: int = 5
    #: The dataset drifts when at least this share of its fields drift.
    drift_share: float = 0.5
    #: Per test name, a threshold replacing the test's default.
    thresholds: Mapping[str, float] = field(default_factory=dict)

    def threshold(self, test: str) -> float:
        return float(self.thresholds.get(test, TESTS[test].threshold))


def field_kind(name: str, reference: pd.Series, settings: DriftSettings) -> Kind:
    """Codes and numbers with few distinct values are categories; two values make a binary field."""
    distinct = reference.nunique()
    if distinct <= 2:
        return "binary"
    if name in CATEGORICAL_COLUMNS or distinct <= settings.categorical_max_distinct:
        return "categorical"
    return "numeric"


def choose_test(kind: Kind, reference_rows: int, settings: DriftSettings) -> StatTest:
    return TESTS[SELECTION[(reference_rows <= settings.small_reference_rows, kind)]]


def compare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    settings: DriftSettings = DriftSettings(),
    fields: Sequence[str] = FEATURE_COLUMNS,
) -> pd.DataFrame:
    """One row per field (``FIELD_COLUMNS``): the test chosen, its statistic, threshold and verdict.

    Missing values are left out of both samples. Both samples need rows: a test of nothing says nothing.
    """
    if reference.empty or current.empty:
        raise ValueError(
            f"drift needs rows on both sides: {len(reference)} reference, {len(current)} current"
        )
    rows = []
    for name in fields:
        before, after = reference[name].dropna(), current[name].dropna()
        kind = field_kind(name, before, settings)
        test = choose_test(kind, len(before), settings)
        threshold = settings.threshold(test.name)
        statistic = test.compute(before, after)
        rows.append((name, kind, test.name, statistic, threshold, test.drifted(statistic, threshold)))
    return pd.DataFrame(rows, columns=list(FIELD_COLUMNS)).astype({"drifted": bool})


def verdict(fields: pd.DataFrame, settings: DriftSettings = DriftSettings()) -> dict[str, float | int | bool]:
    """The dataset's verdict: it drifts when the share of drifted fields reaches ``drift_share``."""
    drifted = int(fields["drifted"].sum())
    share = drifted / len(fields) if len(fields) else 0.0
    return {
        "fields": len(fields),
        "drifted_fields": drifted,
        "drift_share": share,
        "share_threshold": settings.drift_share,
        "drifted": bool(len(fields) and share >= settings.drift_share),
    }
