"""Serving's class probabilities are the model's own ``predict_proba``, only faster for a forest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from covertype.data.convert import api_records_to_frame
from covertype.data.schema import FEATURE_COLUMNS, TARGET_COLUMN
from covertype.pipelines.training.nodes import build_classifier, build_model
from covertype.serving.probabilities import THREADED_FROM_RECORDS, class_probabilities

FAMILIES = {
    "random_forest": {"n_estimators": 40, "min_samples_leaf": 3},
    "extra_trees": {"n_estimators": 40, "max_features": 0.5},
    "hist_gradient_boosting": {"max_iter": 20},
    "lightgbm": {"n_estimators": 20, "num_leaves": 15},
}


@pytest.fixture(scope="module")
def frame(api_rows) -> pd.DataFrame:
    return api_records_to_frame(api_rows[:3000])


@pytest.fixture(scope="module", params=list(FAMILIES))
def model(request, frame):
    """Fitted as training logs it: forests on one thread, whose sum runs in tree order (reproducible)."""
    classifier = build_classifier(request.param, FAMILIES[request.param], seed=3)
    model = build_model(classifier).fit(frame.loc[:, list(FEATURE_COLUMNS)], frame[TARGET_COLUMN])
    return model.set_params(classifier__n_jobs=1) if "n_jobs" in classifier.get_params() else model


def records(frame: pd.DataFrame, count: int) -> pd.DataFrame:
    return frame.loc[:, list(FEATURE_COLUMNS)].iloc[-count:]


def test_one_record_gets_exactly_the_models_own_probabilities(model, frame):
    for index in range(20):
        record = records(frame, 100).iloc[[index]]
        np.testing.assert_array_equal(class_probabilities(model, record), model.predict_proba(record))


@pytest.mark.parametrize("count", [THREADED_FROM_RECORDS - 1, THREADED_FROM_RECORDS, 1000])
def test_a_batch_gets_the_models_probabilities_and_classes_in_order(model, frame, count):
    """Threads sum their share of the trees, so the numbers may differ in the last bit, never more."""
    batch = records(frame, count)
    fast, reference = class_probabilities(model, batch), model.predict_proba(batch)
    np.testing.assert_allclose(fast, reference, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(fast.argmax(axis=1), reference.argmax(axis=1))


def test_missing_values_get_the_models_own_answer(model, frame):
    batch = records(frame, 40).assign(Elevation=pd.array([pd.NA] * 40, dtype="Int64"))
    np.testing.assert_array_equal(class_probabilities(model, batch), model.predict_proba(batch))


def test_records_without_the_model_columns_get_the_models_own_error(model, frame):
    with pytest.raises(ValueError, match="Soil_Type"):
        class_probabilities(model, records(frame, 5).drop(columns="Soil_Type"))
