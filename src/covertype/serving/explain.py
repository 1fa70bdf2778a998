"""Why a prediction: each of the 12 record fields' share of the model's output for the predicted class.

Exact TreeSHAP on the version's own model: LightGBM's ``pred_contrib`` (its C++ TreeSHAP) for
LightGBM, shap's ``TreeExplainer`` (path-dependent TreeSHAP) for scikit-learn's tree models. The
output explained is the one the trees add up: a forest's class probability (its trees' mean), a
booster's raw score for the class (the softmax of the scores is the probability). For every record:
base value + the contributions = that output, exactly up to float rounding.

TreeSHAP attributes the classifier's 65 features; they are mapped back to the 12 fields a user sends
(``covertype.features.FEATURE_SOURCES``): a numeric feature is its own field, the one-hot columns of
a code field (and the soil's climatic and geologic zones) are summed into it, and an engineered
feature computed from several fields is shared equally between them. The sum is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import shap
from sklearn.pipeline import Pipeline

from covertype.data.schema import FEATURE_COLUMNS
from covertype.features import FEATURE_SOURCES, MODEL_FEATURES
from covertype.serving.records import records_to_features
from covertype.serving.schema import CovertypeRecord

Output = Literal["probability", "raw_score"]


def field_attribution() -> np.ndarray:
    """(features, fields): each model feature's contribution shared among the fields it comes from."""
    matrix = np.zeros((len(MODEL_FEATURES), len(FEATURE_COLUMNS)))
    for row, feature in enumerate(MODEL_FEATURES):
        sources = FEATURE_SOURCES[feature]
        for field in sources:
            matrix[row, FEATURE_COLUMNS.index(field)] = 1.0 / len(sources)
    return matrix


ATTRIBUTION = field_attribution()


@dataclass(frozen=True)
class RecordExplanation:
    """One record's predicted class (by position in ``classes``), the base value and the fields' shares."""

    class_index: int
    base_value: float
    contributions: dict[str, float]

    @property
    def value(self) -> float:
        """The model's output for the class: the base value plus every contribution."""
        return self.base_value + sum(self.contributions.values())


class TreeExplainer:
    """Exact TreeSHAP values of a fitted pipeline's tree classifier, per record field."""

    def __init__(self, model: Pipeline) -> None:
        classifier = model.steps[-1][1]
        self._classifier = classifier
        self.classes: tuple[int, ...] = tuple(int(label) for label in classifier.classes_)
        if type(classifier).__name__ == "LGBMClassifier":
            self._booster = classifier.booster_
            self.output: Output = "raw_score"
        else:
            self._booster = None
            self._shap = shap.TreeExplainer(classifier)
            # A forest's trees hold class frequencies: their mean is the probability itself.
            self.output = "probability" if self._shap.model.tree_output == "probability" else "raw_score"

    def feature_contributions(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(records, classes) base values and (records, features, classes) contributions."""
        if self._booster is not None:
            flat = self._booster.predict(features, pred_contrib=True)
            per_class = flat.reshape(len(features), len(self.classes), len(MODEL_FEATURES) + 1)
            return per_class[:, :, -1], per_class[:, :, :-1].transpose(0, 2, 1)
        # Additivity is this module's promise, tested on real records; shap's own check costs a predict.
        values = np.asarray(self._shap.shap_values(features, check_additivity=False))
        base = np.broadcast_to(
            np.asarray(self._shap.expected_value, dtype=np.float64), (len(features), len(self.classes))
        )
        return base, values.reshape(len(features), len(MODEL_FEATURES), len(self.classes))

    def explain(self, records: Sequence[CovertypeRecord]) -> list[RecordExplanation]:
        """Each record's class (the classifier's own ``predict``, ties included) and the fields'
        contributions to the model's output for it."""
        features = records_to_features(records)
        base, contributions = self.feature_contributions(features)
        named = pd.DataFrame(features, columns=list(MODEL_FEATURES))
        best = self._classifier.predict_proba(named).argmax(axis=1)
        rows = np.arange(len(records))
        by_field = np.einsum("rfc,fk->rkc", contributions, ATTRIBUTION)[rows, :, best]
        return [
            RecordExplanation(
                class_index=int(index),
                base_value=float(base[row, index]),
                contributions=dict(zip(FEATURE_COLUMNS, map(float, fields), strict=True)),
            )
            for row, index, fields in zip(rows, best, by_field, strict=True)
        ]
