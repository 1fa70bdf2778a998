"""Explanations are exact: on real records, the base value plus the 12 fields' contributions is the
model's own output for the class it predicts, for every family."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from covertype.data.convert import api_records_to_frame
from covertype.data.schema import FEATURE_COLUMNS, TARGET_COLUMN
from covertype.features import MODEL_FEATURES
from covertype.pipelines.training.nodes import build_classifier, build_model
from covertype.serving.explain import ATTRIBUTION, TreeExplainer
from covertype.serving.schema import CovertypeRecord

FAMILIES = {
    "random_forest": {"n_estimators": 20, "min_samples_leaf": 3},
    "extra_trees": {"n_estimators": 20, "max_features": 0.5},
    "hist_gradient_boosting": {"max_iter": 15},
    "lightgbm": {"n_estimators": 20, "num_leaves": 15},
}
#: The issue's bound on additivity.
ADDITIVITY = 1e-6


@pytest.fixture(scope="module")
def split(api_rows) -> tuple[pd.DataFrame, pd.DataFrame]:
    """1,500 training rows of the shipped sample and 40 real rows the models never saw."""
    frame = api_records_to_frame(api_rows[:1540])
    return frame.iloc[:1500], frame.iloc[1500:]


@pytest.fixture(scope="module", params=list(FAMILIES))
def model(request, split) -> Pipeline:
    model = build_model(build_classifier(request.param, FAMILIES[request.param], seed=5))
    with threadpool_limits(1):
        return model.fit(split[0].loc[:, list(FEATURE_COLUMNS)], split[0][TARGET_COLUMN])


def model_outputs(model: Pipeline, frame: pd.DataFrame, output: str) -> np.ndarray:
    """What the trees add up: a forest's probabilities, a booster's raw scores, from the model's own API."""
    if output == "probability":
        return model.predict_proba(frame)
    classifier, features = model[-1], model[0].transform(frame)
    if hasattr(classifier, "booster_"):
        return classifier.predict(features, raw_score=True)
    return classifier.decision_function(features)


def test_base_plus_contributions_is_the_models_output_for_the_predicted_class(model, split):
    frame = split[1].loc[:, list(FEATURE_COLUMNS)]
    records = [CovertypeRecord(**row) for row in frame.to_dict("records")]
    explainer = TreeExplainer(model)
    explanations = explainer.explain(records)
    outputs = model_outputs(model, frame, explainer.output)
    predicted = model.predict(frame)
    for explanation, output, label in zip(explanations, outputs, predicted, strict=True):
        assert list(explanation.contributions) == list(FEATURE_COLUMNS)
        assert explainer.classes[explanation.class_index] == label
        assert explanation.value == pytest.approx(output[explanation.class_index], abs=ADDITIVITY)


def test_forests_explain_probabilities_and_boosters_raw_scores(model):
    family = type(model[-1]).__name__
    expected = "probability" if family in {"RandomForestClassifier", "ExtraTreesClassifier"} else "raw_score"
    assert TreeExplainer(model).output == expected


def test_every_model_feature_is_shared_out_whole_among_the_record_fields():
    assert ATTRIBUTION.shape == (len(MODEL_FEATURES), len(FEATURE_COLUMNS))
    np.testing.assert_allclose(ATTRIBUTION.sum(axis=1), 1.0)
    soil = ATTRIBUTION[:, FEATURE_COLUMNS.index("Soil_Type")]
    assert soil[MODEL_FEATURES.index("Soil_C7745")] == 1.0
    assert soil[MODEL_FEATURES.index("Soil_Climatic_Zone")] == 1.0
    shared = ATTRIBUTION[MODEL_FEATURES.index("Elevation_Of_Hydrology")]
    assert dict(zip(FEATURE_COLUMNS, shared, strict=True)) == {
        field: 0.5 if field in {"Elevation", "Vertical_Distance_To_Hydrology"} else 0.0
        for field in FEATURE_COLUMNS
    }
