"""Training nodes: the plan, the bounded search, the fitted candidate, its scores and the promotion rule."""

import logging

import mlflow
import pandas as pd
import pytest

from covertype.data.convert import api_records_to_frame, one_hot_to_api
from covertype.data.schema import FEATURE_COLUMNS
from covertype.data.source import load_covertype
from covertype.datasets.model_registry_dataset import RegistryState
from covertype.pipelines.feature_engineering.nodes import deduplicate_rows, derive_features, split_by_row_hash
from covertype.pipelines.training.nodes import (
    decide_promotion,
    evaluation_metrics,
    fit_candidate,
    plan_training,
    plot_confusion_matrix,
    promotion_rule,
    rank_feature_importances,
    score_model,
    search_hyperparameters,
)

NO_REGISTRY = RegistryState(champion=None, champion_version=None, last_trained_rows=None)
SEARCH = {
    "seed": 0,
    "trials_per_family": 2,
    "timeout_seconds": 60,
    "cv_folds": 2,
    "max_rows": 600,
    "spaces": {
        "random_forest": {"n_estimators": {"type": "int", "low": 10, "high": 20, "step": 10}},
        "extra_trees": {"max_features": {"type": "float", "low": 0.2, "high": 0.5}},
        "hist_gradient_boosting": {"max_iter": {"type": "int", "low": 10, "high": 20}},
    },
}


@pytest.fixture(scope="module")
def feature_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    api = one_hot_to_api(load_covertype("sample")).head(2_000)
    rows = deduplicate_rows(api_records_to_frame(api.to_numpy().tolist()).assign(id=range(2_000)))
    return split_by_row_hash(derive_features(rows), 0.2)


@pytest.fixture
def mlflow_run(tmp_path, monkeypatch):
    """An active run in an empty local store, as kedro-mlflow opens one around the training nodes."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    with mlflow.start_run() as run:
        yield run


@pytest.fixture(scope="module")
def candidate(feature_tables):
    train, _ = feature_tables
    best = {"family": "extra_trees", "params": {"n_estimators": 30}, "seed": 0}
    return fit_candidate(train, best, NO_REGISTRY)


def test_promotion_without_a_champion():
    assert promotion_rule(0.70, None, 0.01) == (True, "no champion yet")


def test_promotion_when_the_challenger_is_better_by_the_margin():
    promote, reason = promotion_rule(0.75, 0.70, 0.01)
    assert promote and "+0.0500" in reason


def test_no_promotion_when_the_challenger_is_worse():
    promote, reason = promotion_rule(0.65, 0.70, 0.01)
    assert not promote and "-0.0500" in reason


def test_no_promotion_when_the_challenger_is_equal_within_the_margin():
    assert not promotion_rule(0.705, 0.70, 0.01)[0]
    assert not promotion_rule(0.70, 0.70, 0.0001)[0]


def test_training_is_due_without_a_trained_version_and_after_enough_new_rows(feature_tables):
    train, test = feature_tables
    rows = len(train) + len(test)
    assert plan_training(train, test, NO_REGISTRY, 500)["due"]
    trained = RegistryState(champion=object(), champion_version="1", last_trained_rows=rows - 500)
    assert plan_training(train, test, trained, 500)["due"]


def test_training_is_skipped_when_too_few_new_rows_arrived(feature_tables, caplog):
    caplog.set_level(logging.INFO)
    train, test = feature_tables
    trained = RegistryState(
        champion=object(), champion_version="1", last_trained_rows=len(train) + len(test) - 10
    )
    plan = plan_training(train, test, trained, 500)
    assert not plan["due"] and plan["new_rows"] == 10
    assert "Training skipped: 10 new rows" in caplog.text


def test_a_skipped_plan_searches_nothing_and_keeps_the_champion(feature_tables):
    train, _ = feature_tables
    champion = object()
    assert search_hyperparameters(train, {"due": False}, SEARCH) == {}
    assert fit_candidate(train, {}, RegistryState(champion, "3", len(train))) is champion


def test_the_search_tries_every_family_within_budget_as_nested_runs(feature_tables, mlflow_run):
    train, _ = feature_tables
    best = search_hyperparameters(train, {"due": True}, SEARCH)
    assert best["family"] in SEARCH["spaces"]
    assert best["cv_macro_f1"] == max(best["cv_macro_f1_by_family"].values())
    trials = mlflow.MlflowClient().search_runs(
        [mlflow_run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{mlflow_run.info.run_id}'"
    )
    assert len(trials) == 3 * SEARCH["trials_per_family"]
    assert {trial.data.tags["family"] for trial in trials} == set(SEARCH["spaces"])


def test_the_candidate_takes_raw_records_and_serves_on_one_thread(candidate, feature_tables):
    _, test = feature_tables
    assert candidate.steps[0][0] == "features" and candidate.named_steps["classifier"].n_jobs == 1
    probabilities = candidate.predict_proba(test.loc[:, list(FEATURE_COLUMNS)])
    assert probabilities.shape == (len(test), len(candidate.classes_))


def test_scores_cover_accuracy_macro_f1_auc_and_every_class(candidate, feature_tables):
    _, test = feature_tables
    scores = score_model(candidate, test)
    assert 0.5 < scores["test_accuracy"] <= 1 and 0 < scores["test_macro_f1"] <= 1
    assert 0.5 < scores["test_roc_auc_ovr"] <= 1
    accuracy, macro_f1, _, per_class = evaluation_metrics(scores)
    assert (accuracy, macro_f1) == (scores["test_accuracy"], scores["test_macro_f1"])
    assert set(per_class) == {str(label) for label in range(1, 8)}


def test_the_confusion_matrix_and_importances_describe_the_candidate(candidate, feature_tables):
    _, test = feature_tables
    figure = plot_confusion_matrix(candidate, test)
    assert figure.axes[0].get_title() == "Test confusion matrix"
    importances = rank_feature_importances(candidate, test, seed=0)
    assert importances["importance"].is_monotonic_decreasing and (importances["method"] == "impurity").all()


def test_the_decision_names_the_metric_and_both_scores():
    promotion = {"metric": "test_macro_f1", "min_improvement": 0.01}
    decision = decide_promotion({"due": True}, {"test_macro_f1": 0.72}, {"test_macro_f1": 0.70}, promotion)
    assert decision["promote"] and decision["decision"] == "promoted"
    assert "0.7200 vs champion 0.7000" in decision["reason"]
    skipped = decide_promotion({"due": False, "reason": "10 new rows"}, {}, {}, promotion)
    assert skipped["decision"] == "skipped" and not skipped["promote"]
