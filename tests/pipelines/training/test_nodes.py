"""Training nodes: the one decision to train, the bounded search, the challenger, the promotion."""

import logging

import cloudpickle
import mlflow
import pandas as pd
import pytest

from covertype.data.convert import api_records_to_frame, one_hot_to_api
from covertype.data.schema import FEATURE_COLUMNS
from covertype.data.source import load_covertype
from covertype.datasets.model_registry_dataset import RegistryState
from covertype.model_package import MEGABYTE
from covertype.pipelines.feature_engineering.nodes import deduplicate_rows, derive_features, split_by_row_hash
from covertype.pipelines.training.nodes import (
    as_metrics,
    convert_challenger,
    decide_promotion,
    decide_training,
    fingerprint_training,
    fit_challenger,
    plot_confusion_matrix,
    prepare_registration,
    promotion_rule,
    rank_feature_importances,
    score_challenger,
    score_model,
    search_hyperparameters,
    search_metrics,
    select_served_model,
)

NO_REGISTRY = RegistryState(champion=None, champion_version=None, last_trained_rows=None)
NO_DRIFT_REPORT = pd.DataFrame()  # the table before monitoring ran


def batch_report(drifted: bool) -> pd.DataFrame:
    """The drift reports table with one batch report, as the monitoring pipeline stores it."""
    return pd.DataFrame(
        {"id": [1], "source": ["batch"], "subject": ["group 1, batch 4"], "drifted": [drifted],
         "drifted_fields": [9 if drifted else 1], "fields": [12], "drift_share": [0.75 if drifted else 0.08],
         "share_threshold": [0.5]}
    )  # fmt: skip


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
        "lightgbm": {"n_estimators": {"type": "int", "low": 10, "high": 20}},
    },
}
#: The default budget (conf/base/parameters_training.yml): every model of these tests fits it.
BUDGET_MB = 25
#: More than the tests' training rows: the challengers are fitted on every row.
FIT_MAX_ROWS = 1_000_000
RETENTION = {"keep_last": 3}
ENGINE_PARAMS = {"tolerance": 1e-5}
TRAINING = {"min_new_rows": 500, "search": SEARCH, "retention": RETENTION}


def decide(
    train: pd.DataFrame,
    test: pd.DataFrame,
    registry: RegistryState,
    drift_reports: pd.DataFrame = NO_DRIFT_REPORT,
    *,
    retrain_on_drift: bool = True,
) -> dict:
    """``decide_training`` as the pipeline calls it, with these tests' parameters."""
    fingerprint = fingerprint_training(train, test, TRAINING)
    return decide_training(
        train, test, registry, drift_reports, fingerprint,
        min_new_rows=500, retrain_on_drift=retrain_on_drift, spaces=SEARCH["spaces"],
    )  # fmt: skip


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
def challenger(feature_tables) -> dict:
    train, _ = feature_tables
    results = {
        "extra_trees": {"params": {"n_estimators": 30}, "cv_macro_f1": 0.8},
        "random_forest": {"params": {"n_estimators": 10}, "cv_macro_f1": 0.7},
    }
    return fit_challenger(train, results, seed=0, model_size_budget_mb=BUDGET_MB, fit_max_rows=FIT_MAX_ROWS)


@pytest.fixture(scope="module")
def candidate(challenger):
    return challenger["model"]


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


def test_training_plans_every_family_without_a_trained_version_and_after_enough_new_rows(feature_tables):
    train, test = feature_tables
    rows = len(train) + len(test)
    assert decide(train, test, NO_REGISTRY)["families"] == list(SEARCH["spaces"])
    trained = RegistryState(champion=object(), champion_version="1", last_trained_rows=rows - 500)
    assert decide(train, test, trained)["families"] == list(SEARCH["spaces"])


def test_training_plans_no_family_when_too_few_new_rows_arrived(feature_tables, caplog):
    caplog.set_level(logging.INFO)
    train, test = feature_tables
    trained = RegistryState(
        champion=object(), champion_version="1", last_trained_rows=len(train) + len(test) - 10
    )
    plan = decide(train, test, trained)
    assert plan["families"] == [] and plan["new_rows"] == 10
    assert "Training skipped: 10 new rows" in caplog.text


def test_a_drifted_batch_trains_on_fewer_new_rows_when_retraining_on_drift(feature_tables, caplog):
    caplog.set_level(logging.INFO)
    train, test = feature_tables
    trained = RegistryState(
        champion=object(), champion_version="1", last_trained_rows=len(train) + len(test) - 10
    )
    plan = decide(train, test, trained, batch_report(True))
    assert plan["families"] == list(SEARCH["spaces"])
    assert "group 1, batch 4 drifted (9 of 12 fields, share 0.75" in plan["reason"]
    assert "Training due" in caplog.text


def test_drift_trains_nothing_when_turned_off_not_drifted_or_without_new_rows(feature_tables):
    train, test = feature_tables
    rows = len(train) + len(test)
    few_new = RegistryState(champion=object(), champion_version="1", last_trained_rows=rows - 10)
    none_new = RegistryState(champion=object(), champion_version="1", last_trained_rows=rows)
    assert decide(train, test, few_new, batch_report(True), retrain_on_drift=False)["families"] == []
    plan = decide(train, test, few_new, batch_report(False), retrain_on_drift=True)
    assert plan["families"] == [] and "batch 4 did not drift" in plan["reason"]
    assert decide(train, test, none_new, batch_report(True), retrain_on_drift=True)["families"] == []


def test_the_fingerprint_names_the_rows_in_any_order_and_the_parameters(feature_tables):
    train, test = feature_tables
    fingerprint = fingerprint_training(train, test, TRAINING)
    assert fingerprint == fingerprint_training(train.sample(frac=1, random_state=1), test, TRAINING)
    assert fingerprint != fingerprint_training(train.iloc[1:], test, TRAINING)
    assert fingerprint != fingerprint_training(train, test, {**TRAINING, "min_new_rows": 501})
    assert fingerprint != fingerprint_training(test, train, TRAINING)


def test_training_plans_no_family_when_a_version_was_registered_from_the_same_rows_and_parameters(
    feature_tables, caplog
):
    """A retried or rerun training, even without a champion (its first version rejected), trains
    and registers nothing twice."""
    caplog.set_level(logging.INFO)
    train, test = feature_tables
    fingerprint = fingerprint_training(train, test, TRAINING)
    registered = RegistryState(None, None, len(train) + len(test), {fingerprint: "3"})
    plan = decide(train, test, registered)
    assert plan["families"] == [] and plan["fingerprint"] == fingerprint
    assert "version 3 was registered from these rows and parameters already" in caplog.text
    assert decide(train.iloc[1:], test, registered)["families"] == list(SEARCH["spaces"])


def test_an_empty_plan_leaves_no_search_metric_no_challenger_and_no_challenger_metric(feature_tables):
    train, test = feature_tables
    results = search_hyperparameters(train, {"families": []}, SEARCH)
    assert results == {} and search_metrics(results) == {}
    challenger = fit_challenger(
        train, results, seed=0, model_size_budget_mb=BUDGET_MB, fit_max_rows=FIT_MAX_ROWS
    )
    assert challenger == {} and as_metrics(score_challenger(challenger, test)) == {}
    skipped = {"decision": "skipped", "promote": False, "reason": "training skipped: 10 new rows"}
    engine = convert_challenger(challenger, test, ENGINE_PARAMS, BUDGET_MB)
    assert engine == {}
    plan = {"rows": 2_000, "reason": "10 new rows", "fingerprint": "f"}
    registration = prepare_registration(
        challenger, skipped, plan, {}, test, challenger_engine=engine, retention=RETENTION
    )
    assert registration["model"] is None and registration["engine_model"] is None
    assert registration["tags"] == {
        "training_rows": "2000",
        "fingerprint": "f",
        "training_reason": "10 new rows",
    }


def test_the_search_tries_every_family_within_budget_as_nested_runs(feature_tables, mlflow_run):
    train, _ = feature_tables
    results = search_hyperparameters(train, {"families": list(SEARCH["spaces"])}, SEARCH)
    assert set(results) == set(SEARCH["spaces"])
    assert set(search_metrics(results)) == set(SEARCH["spaces"])
    trials = mlflow.MlflowClient().search_runs(
        [mlflow_run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{mlflow_run.info.run_id}'"
    )
    assert len(trials) == len(SEARCH["spaces"]) * SEARCH["trials_per_family"]
    assert {trial.data.tags["family"] for trial in trials} == set(SEARCH["spaces"])


def test_the_challenger_is_the_best_searched_family_fitted_and_compressed(challenger):
    assert challenger["family"] == "extra_trees"
    assert challenger["model"].named_steps["classifier"].n_estimators == 30
    package = challenger["package"]
    assert package.estimator is challenger["model"]
    assert 0 < package.size_bytes < len(cloudpickle.dumps(challenger["model"])) / 3


def test_the_challenger_is_fitted_on_at_most_fit_max_rows_rows_those_with_the_smallest_hashes(feature_tables):
    train, _ = feature_tables
    results = {"extra_trees": {"params": {"n_estimators": 2}, "cv_macro_f1": 0.8}}
    capped = fit_challenger(train, results, seed=0, model_size_budget_mb=BUDGET_MB, fit_max_rows=500)
    # ExtraTrees draws no bootstrap sample: each tree's root holds every row it was fitted on.
    trees = capped["model"].named_steps["classifier"].estimators_
    assert len(train) > 500 and [tree.tree_.n_node_samples[0] for tree in trees] == [500, 500]
    again = fit_challenger(train.sample(frac=1, random_state=1), results, 0, BUDGET_MB, fit_max_rows=500)
    first_records = train.loc[:, list(FEATURE_COLUMNS)].head(50)
    assert (capped["model"].predict_proba(first_records) == again["model"].predict_proba(first_records)).all()


def test_a_family_over_the_budget_gives_way_to_the_next_best_that_fits(feature_tables):
    train, _ = feature_tables
    results = {
        "extra_trees": {"params": {"n_estimators": 30}, "cv_macro_f1": 0.8},
        "lightgbm": {"params": {"n_estimators": 5, "num_leaves": 4}, "cv_macro_f1": 0.7},
    }
    forest = fit_challenger(
        train, results, seed=0, model_size_budget_mb=BUDGET_MB, fit_max_rows=FIT_MAX_ROWS
    )["package"].size_bytes
    budget_mb = forest / 2 / MEGABYTE  # half the forest: the small booster still fits
    fitted = fit_challenger(train, results, seed=0, model_size_budget_mb=budget_mb, fit_max_rows=FIT_MAX_ROWS)
    assert fitted["family"] == "lightgbm" and fitted["package"].size_bytes <= budget_mb * MEGABYTE
    # None fits: the best is kept, for the promotion gate to refuse.
    assert (
        fit_challenger(train, results, seed=0, model_size_budget_mb=1e-6, fit_max_rows=FIT_MAX_ROWS)["family"]
        == "extra_trees"
    )


def test_a_lightgbm_challenger_serves_raw_records(feature_tables):
    train, test = feature_tables
    results = {"lightgbm": {"params": {"n_estimators": 20, "num_leaves": 15}, "cv_macro_f1": 0.7}}
    model = fit_challenger(train, results, seed=0, model_size_budget_mb=BUDGET_MB, fit_max_rows=FIT_MAX_ROWS)[
        "model"
    ]
    assert score_model(model, test)["test_accuracy"] > 0.6
    assert rank_feature_importances(model, test, seed=0)["importance"].is_monotonic_decreasing


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
    assert {name for name in scores if name.startswith("test_f1_class.")} == {
        f"test_f1_class.{label}" for label in range(1, 8)
    }
    assert as_metrics(scores)["test_macro_f1"] == {"value": scores["test_macro_f1"], "step": 0}


def test_the_confusion_matrix_and_importances_describe_the_candidate(candidate, feature_tables):
    _, test = feature_tables
    figure = plot_confusion_matrix(candidate, test)
    assert figure.axes[0].get_title() == "Test confusion matrix"
    importances = rank_feature_importances(candidate, test, seed=0)
    assert importances["importance"].is_monotonic_decreasing and (importances["method"] == "impurity").all()


PROMOTION = {"metric": "test_macro_f1", "min_improvement": 0.01}
PLAN = {"families": ["extra_trees"], "rows": 2_000, "reason": "10 new rows", "fingerprint": "f"}


def test_the_decision_names_the_metric_both_scores_and_the_size(challenger):
    decision = decide_promotion(
        PLAN,
        challenger,
        {"test_macro_f1": 0.72},
        {"test_macro_f1": 0.70},
        promotion=PROMOTION,
        model_size_budget_mb=BUDGET_MB,
    )
    assert decision["promote"] and decision["decision"] == "promoted"
    assert "0.7200 vs champion 0.7000" in decision["reason"]
    assert f"MB stored (budget {BUDGET_MB} MB)" in decision["reason"]


def test_a_challenger_over_the_size_budget_is_never_promoted(challenger):
    budget_mb = challenger["package"].size_bytes / 2 / MEGABYTE
    for champion_scores in ({}, {"test_macro_f1": 0.1}):  # no champion yet, a far worse one
        decision = decide_promotion(
            PLAN,
            challenger,
            {"test_macro_f1": 0.9},
            champion_scores,
            promotion=PROMOTION,
            model_size_budget_mb=budget_mb,
        )
        assert (decision["decision"], decision["promote"]) == ("rejected", False)
        assert f"MB stored, over the {budget_mb} MB budget" in decision["reason"]


def test_without_a_challenger_the_decision_is_skipped_for_the_plans_reason():
    skipped = decide_promotion(
        PLAN, {}, {}, {"test_macro_f1": 0.70}, promotion=PROMOTION, model_size_budget_mb=BUDGET_MB
    )
    assert skipped == {"decision": "skipped", "promote": False, "reason": "training skipped: 10 new rows"}


def test_the_served_model_is_the_challenger_only_when_promoted():
    champion, challenger = object(), {"family": "extra_trees", "model": object()}
    registry = RegistryState(champion=champion, champion_version="1", last_trained_rows=1_000)
    assert select_served_model({"promote": True}, challenger, registry) is challenger["model"]
    assert select_served_model({"promote": False}, challenger, registry) is champion
    assert select_served_model({"promote": False}, {}, registry) is champion
    oversized = {"promote": False, "reason": "the model is 30.0 MB stored, over the 25 MB budget"}
    with pytest.raises(ValueError, match=r"no champion to serve: .* over the 25 MB budget"):
        select_served_model(oversized, challenger, NO_REGISTRY)


def test_a_registration_carries_the_challenger_its_scores_and_the_training_rows(challenger, feature_tables):
    _, test = feature_tables
    decision = {"decision": "promoted", "promote": True, "reason": "no champion yet"}
    scores = {"test_accuracy": 0.81234, "test_macro_f1": 0.7, "test_roc_auc_ovr": 0.9}
    engine = convert_challenger(challenger, test, ENGINE_PARAMS, BUDGET_MB)
    registration = prepare_registration(
        challenger, decision, PLAN, scores, test, challenger_engine=engine, retention=RETENTION
    )
    assert registration["model"] is challenger["package"] and registration["decision"] == decision
    assert registration["engine_model"] is engine["stored"] is not None, engine["tags"]
    assert registration["keep_last"] == RETENTION["keep_last"]
    assert registration["tags"] == {
        "training_rows": "2000",
        "model_family": "extra_trees",
        "training_reason": PLAN["reason"],
        "fingerprint": "f",
        "test_accuracy": "0.8123",
        "test_macro_f1": "0.7000",
        "serving_engine": "onnxruntime",
        "serving_engine_rows_checked": str(len(test)),
        "serving_engine_max_abs_diff": engine["tags"]["serving_engine_max_abs_diff"],
    }
    assert list(registration["input_example"].columns) == list(FEATURE_COLUMNS)
    assert list(registration["check_records"].columns) == list(FEATURE_COLUMNS)
    assert len(registration["check_records"]) == min(len(test), 200)


def test_a_converted_model_must_fit_in_what_the_size_budget_leaves(challenger, feature_tables):
    _, test = feature_tables
    budget_mb = (challenger["package"].size_bytes + 1000) / MEGABYTE
    engine = convert_challenger(challenger, test, ENGINE_PARAMS, budget_mb)
    assert engine["stored"] is None and engine["tags"]["serving_engine"] == "model_predict_proba"
    assert "over the 1,000 left in the size budget" in engine["tags"]["serving_engine_refused"]
