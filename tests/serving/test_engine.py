"""The engine serves a model only once registration proved it equal to the model's own ``predict_proba``."""

from __future__ import annotations

import gzip

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
from covertype.serving.conversion import LOOSEST_TOLERANCE, Conversion, convert_and_check
from covertype.serving.engine import (
    ENGINE,
    ENGINE_TAG,
    MAX_DIFFERENCE_TAG,
    MODEL_PATH,
    REFUSAL_TAG,
    ROWS_CHECKED_TAG,
    EngineModel,
)
from covertype.serving.schema import CovertypeRecord

#: The families the engine serves, small enough for a test.
FAMILIES = {
    "random_forest": {"n_estimators": 30, "min_samples_leaf": 3},
    "extra_trees": {"n_estimators": 30, "max_features": 0.5},
    "lightgbm": {"n_estimators": 30, "num_leaves": 15},
}


@pytest.fixture(scope="module")
def split(api_rows) -> tuple[pd.DataFrame, pd.DataFrame]:
    """2,000 training rows and a 1,000-row test split of the shipped sample."""
    frame = api_records_to_frame(api_rows[:3000])
    return frame.iloc[:2000], frame.iloc[2000:]


def fitted(family: str, train: pd.DataFrame, params: dict | None = None) -> Pipeline:
    model = build_model(build_classifier(family, params or FAMILIES[family], seed=3))
    with threadpool_limits(1):  # OpenMP threads spinning on a busy 2-core machine cost 10x
        model.fit(train.loc[:, list(FEATURE_COLUMNS)], train[TARGET_COLUMN])
    return model.set_params(classifier__n_jobs=1) if "n_jobs" in model[-1].get_params() else model


def validated(frame: pd.DataFrame) -> list[CovertypeRecord]:
    return [CovertypeRecord(**row) for row in frame.loc[:, list(FEATURE_COLUMNS)].to_dict("records")]


@pytest.fixture(scope="module", params=list(FAMILIES))
def converted(request, split) -> tuple[Pipeline, Conversion]:
    """A model of each family, and its conversion checked on the test split."""
    model = fitted(request.param, split[0])
    return model, convert_and_check(model, split[1], tolerance=LOOSEST_TOLERANCE)


def test_each_family_is_converted_checked_on_every_test_row_and_tagged(converted, split):
    _, conversion = converted
    assert conversion.stored is not None
    assert conversion.tags[ENGINE_TAG] == ENGINE
    assert conversion.tags[ROWS_CHECKED_TAG] == str(len(split[1]))
    assert 0 <= float(conversion.tags[MAX_DIFFERENCE_TAG]) <= LOOSEST_TOLERANCE
    assert REFUSAL_TAG not in conversion.tags


@pytest.mark.parametrize("size", [1, 16, 100, 1000])
def test_every_request_size_gets_the_models_own_classes_through_the_stored_engine(converted, split, size):
    model, conversion = converted
    engine = EngineModel.from_stored(conversion.stored)
    frame = split[1].iloc[:size]
    served = engine.record_probabilities(validated(frame))
    reference = model.predict_proba(frame.loc[:, list(FEATURE_COLUMNS)])
    assert engine.classes == tuple(model.classes_)
    np.testing.assert_allclose(served, reference, rtol=0, atol=LOOSEST_TOLERANCE)
    np.testing.assert_array_equal(served.argmax(axis=1), reference.argmax(axis=1))


class ScaledElevation(CovertypeFeatures):
    """A feature step that is not the served one (as a model pickled with other feature code would carry)."""

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        features = super().transform(X)
        return features.assign(Elevation=features["Elevation"] * 1.05)


def test_a_converted_model_that_differs_from_the_model_is_refused_and_tagged_with_why(split):
    train, test = split
    model = Pipeline([("features", ScaledElevation()), ("classifier", fitted("extra_trees", train)[-1])])
    conversion = convert_and_check(model, test, LOOSEST_TOLERANCE)
    assert conversion.stored is None
    assert conversion.tags[ENGINE_TAG] == MODEL_PATH
    assert conversion.tags[REFUSAL_TAG].endswith(f"of {len(test)} test rows get another class")
    assert conversion.tags[ROWS_CHECKED_TAG] == str(len(test))


def test_a_probability_beyond_the_tolerance_is_refused_naming_the_difference(split):
    model = fitted("random_forest", split[0])  # float32 thresholds and sums: not bit-identical
    conversion = convert_and_check(model, split[1], tolerance=0.0)
    assert conversion.stored is None and conversion.tags[ENGINE_TAG] == MODEL_PATH
    difference = float(conversion.tags[MAX_DIFFERENCE_TAG])
    assert 0 < difference <= LOOSEST_TOLERANCE
    assert conversion.tags[REFUSAL_TAG] == (
        f"a probability differs by {difference:.3g} from predict_proba (tolerance 0)"
    )


def test_a_converted_model_over_the_size_budget_left_is_refused(split):
    conversion = convert_and_check(
        fitted("extra_trees", split[0]), split[1], LOOSEST_TOLERANCE, max_stored_bytes=1000
    )
    assert conversion.stored is None
    assert "over the 1,000 left in the size budget" in conversion.tags[REFUSAL_TAG]


def test_a_family_the_converters_refuse_serves_through_its_own_predict_proba(split):
    """skl2onnx 1.20 cannot write scikit-learn 1.9's HistGradientBoosting (a boolean in an int attribute)."""
    model = fitted("hist_gradient_boosting", split[0], {"max_iter": 10})
    conversion = convert_and_check(model, split[1], LOOSEST_TOLERANCE)
    assert conversion.tags[ENGINE_TAG] == MODEL_PATH
    assert conversion.tags[REFUSAL_TAG].startswith("HistGradientBoostingClassifier could not be converted (")


def test_a_tolerance_looser_than_the_bound_or_no_test_rows_are_refused(split):
    model = fitted("random_forest", split[0])
    with pytest.raises(ValueError, match=r"tolerance must be within \[0, 1e-05\]"):
        convert_and_check(model, split[1], tolerance=1e-4)
    empty = convert_and_check(model, split[1].iloc[:0], LOOSEST_TOLERANCE)
    assert empty.tags == {ENGINE_TAG: MODEL_PATH, REFUSAL_TAG: "no test rows to check the converted model on"}


def test_a_lightgbm_model_inside_the_pipeline_is_converted_by_onnxmltools(split):
    classifier = LGBMClassifier(n_estimators=10, num_leaves=7, random_state=3, n_jobs=1, verbose=-1)
    model = build_model(classifier).fit(split[0].loc[:, list(FEATURE_COLUMNS)], split[0][TARGET_COLUMN])
    assert convert_and_check(model, split[1], LOOSEST_TOLERANCE).engine == ENGINE


def test_the_stored_engine_loads_whether_or_not_the_transport_undid_its_gzip(converted):
    """An MLflow server proxying artifacts serves ``model.onnx.gz`` with ``Content-Encoding: gzip``,
    which the HTTP client decodes: the service gets the bare graph then."""
    _, conversion = converted
    bare = gzip.decompress(conversion.stored)
    assert EngineModel.from_stored(bare).classes == EngineModel.from_stored(conversion.stored).classes
