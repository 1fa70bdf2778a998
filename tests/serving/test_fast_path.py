"""The fast route serves a model only once it matches the model's own ``predict_proba`` on the test split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from covertype.data.convert import api_records_to_frame
from covertype.data.schema import FEATURE_COLUMNS, TARGET_COLUMN
from covertype.features import CovertypeFeatures
from covertype.pipelines.training.nodes import build_classifier, build_model
from covertype.serving.fast_path import (
    FAST_UP_TO_RECORDS,
    MODEL_PATH,
    PARITY_TOLERANCE,
    parity_failure,
    predictor_for,
)
from covertype.serving.schema import CovertypeRecord

FAMILIES = {
    "random_forest": {"n_estimators": 30, "min_samples_leaf": 3},
    "extra_trees": {"n_estimators": 30, "max_features": 0.5},
    "hist_gradient_boosting": {"max_iter": 20},
}
ROUTES = {
    "random_forest": "numpy_tree_walk",
    "extra_trees": "numpy_tree_walk",
    "hist_gradient_boosting": "numpy_tree_walk",
    "lightgbm": "lightgbm_booster",
}


@pytest.fixture(scope="module")
def split(api_rows) -> tuple[pd.DataFrame, pd.DataFrame]:
    """2,000 training rows and a 1,000-row test split of the shipped sample."""
    frame = api_records_to_frame(api_rows[:3000])
    return frame.iloc[:2000], frame.iloc[2000:]


def fitted(family: str, train: pd.DataFrame) -> Pipeline:
    if family == "lightgbm":  # the sklearn API inside the same pipeline, as the compact family uses it
        classifier = LGBMClassifier(n_estimators=30, num_leaves=15, random_state=3, n_jobs=1, verbose=-1)
        model = build_model(classifier)
    else:
        model = build_model(build_classifier(family, FAMILIES[family], seed=3))
    with threadpool_limits(1):  # OpenMP threads spinning on a busy 2-core machine cost 10x
        model.fit(train.loc[:, list(FEATURE_COLUMNS)], train[TARGET_COLUMN])
    return model.set_params(classifier__n_jobs=1) if "n_jobs" in model[-1].get_params() else model


def validated(frame: pd.DataFrame) -> list[CovertypeRecord]:
    return [CovertypeRecord(**row) for row in frame.loc[:, list(FEATURE_COLUMNS)].to_dict("records")]


@pytest.fixture(scope="module", params=list(ROUTES))
def family_model(request, split) -> tuple[str, Pipeline]:
    return request.param, fitted(request.param, split[0])


def test_each_family_is_served_by_its_fast_route_with_the_models_own_answers(family_model, split):
    family, model = family_model
    test = split[1]
    predictor = predictor_for(model, test)
    assert predictor.name == ROUTES[family]
    records, reference = validated(test), model.predict_proba(test.loc[:, list(FEATURE_COLUMNS)])
    one_by_one = np.concatenate([predictor.probabilities([record]) for record in records[:200]])
    np.testing.assert_allclose(one_by_one, reference[:200], rtol=0, atol=PARITY_TOLERANCE)
    np.testing.assert_array_equal(one_by_one.argmax(axis=1), reference[:200].argmax(axis=1))
    # A batch over the walk's size takes the model's own path (LightGBM: its Booster still): the same answers.
    batch = predictor.probabilities(records[: 4 * FAST_UP_TO_RECORDS])
    np.testing.assert_allclose(batch, reference[: 4 * FAST_UP_TO_RECORDS], rtol=0, atol=PARITY_TOLERANCE)


class ScaledElevation(CovertypeFeatures):
    """A feature step that is not ours (as a model pickled with other feature code would carry)."""

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        features = super().transform(X)
        return features.assign(Elevation=features["Elevation"] * 1.01)


def test_a_route_that_differs_from_the_model_is_refused_and_the_model_serves_itself(split):
    train, test = split
    model = Pipeline([("features", ScaledElevation()), ("classifier", fitted("extra_trees", train)[-1])])
    model.fit(train.loc[:, list(FEATURE_COLUMNS)], train[TARGET_COLUMN])
    predictor = predictor_for(model, test)
    assert predictor.name == MODEL_PATH
    records = validated(test.iloc[:5])
    frame = test.loc[:, list(FEATURE_COLUMNS)].iloc[:5]
    np.testing.assert_array_equal(predictor.probabilities(records), model.predict_proba(frame))


def test_the_parity_check_names_what_differs(split):
    train, test = split
    model = fitted("random_forest", train)

    def shifted(X: np.ndarray) -> np.ndarray:
        exact = model[-1].predict_proba(pd.DataFrame(X, columns=model[-1].feature_names_in_))
        return exact + np.where(np.arange(exact.shape[1]) == 0, 1e-5, 0.0)

    assert (
        parity_failure(model, shifted, test)
        == f"a probability differs by 1e-05 (tolerance {PARITY_TOLERANCE})"
    )


def test_without_a_test_split_the_model_serves_itself(split):
    model = fitted("random_forest", split[0])
    assert predictor_for(model, None).name == MODEL_PATH
    assert predictor_for(model, split[1].iloc[:0]).name == MODEL_PATH
