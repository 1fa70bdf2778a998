"""Training: decide whether to train, then search, fit and score a challenger, decide its promotion.

Every input and output is a catalog entry; the one exception is the search's trials, which are
logged as nested MLflow runs because no dataset represents a run of their own.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import lightgbm
import mlflow
import numpy as np
import optuna
import pandas as pd
from matplotlib.figure import Figure
from sklearn.base import ClassifierMixin
from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import ConfusionMatrixDisplay, accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from covertype.data.schema import COVER_TYPE_NAMES, FEATURE_COLUMNS, TARGET_COLUMN
from covertype.datasets.model_registry_dataset import RegistryState
from covertype.features import MODEL_FEATURES, STORED_FEATURES, CovertypeFeatures
from covertype.model_package import MEGABYTE, CompressedModel
from covertype.registry import FINGERPRINT_TAG, TRAINING_ROWS_TAG
from covertype.serving.conversion import convert_and_check

logger = logging.getLogger(__name__)

CLASSIFIERS: dict[str, type[ClassifierMixin]] = {
    "random_forest": RandomForestClassifier,
    "extra_trees": ExtraTreesClassifier,
    "hist_gradient_boosting": HistGradientBoostingClassifier,
    "lightgbm": lightgbm.LGBMClassifier,
}
#: Each family's threading: forests train on every core (joblib threads); the boosters on one
#: OpenMP thread (with ``threadpool_limits`` below): on a busy 2-core machine their spinning OpenMP
#: threads made a 3-fold CV 6x slower with two threads than with one (LightGBM: 125 s instead of 20).
FAMILY_OPTIONS: dict[str, dict[str, Any]] = {
    "random_forest": {"n_jobs": -1},
    "extra_trees": {"n_jobs": -1},
    "hist_gradient_boosting": {},
    "lightgbm": {"n_jobs": 1, "verbose": -1},
}
CLASSES = tuple(COVER_TYPE_NAMES)


def build_classifier(family: str, params: dict[str, Any], seed: int) -> ClassifierMixin:
    """A classifier of ``family`` with its threading (``FAMILY_OPTIONS``)."""
    return CLASSIFIERS[family](**params, **FAMILY_OPTIONS[family], random_state=seed)


def build_model(classifier: ClassifierMixin) -> Pipeline:
    """The served model: raw 12-column records -> features -> classifier."""
    return Pipeline([("features", CovertypeFeatures()), ("classifier", classifier)])


def latest_batch_drift(drift_reports: pd.DataFrame) -> dict[str, Any] | None:
    """The newest report on an ingested batch (covertype.pipelines.monitoring), or None before any."""
    if drift_reports.empty:
        return None
    batches = drift_reports[drift_reports["source"] == "batch"]
    return None if batches.empty else batches.sort_values("id").iloc[-1].to_dict()


def fingerprint_training(
    features_train: pd.DataFrame, features_test: pd.DataFrame, training: dict[str, Any]
) -> str:
    """A fingerprint of what a version is trained from: the training and test rows (their hashes, in
    any order) and the training parameters. A retried or rerun training finds it on the version it
    registered already, and registers no second one."""
    digest = hashlib.sha256(json.dumps(training, sort_keys=True, default=str).encode())
    for split in (features_train, features_test):
        digest.update(np.sort(split["row_hash"].to_numpy(dtype=str)).astype("S").tobytes())
        digest.update(b"|")
    return digest.hexdigest()


def decide_training(
    features_train: pd.DataFrame,
    features_test: pd.DataFrame,
    model_registry: RegistryState,
    drift_reports: pd.DataFrame,
    training_fingerprint: str,
    *,
    min_new_rows: int,
    retrain_on_drift: bool,
    spaces: dict[str, Any],
) -> dict[str, Any]:
    """The one decision whether to train: the families to search, all of them or none.

    Training is due when there is no champion yet, when at least ``min_new_rows`` rows arrived since
    the last trained version, or (with ``retrain_on_drift``) when the latest batch's drift report
    says it drifted and rows arrived since the last trained version (so one drifted batch trains
    once); never when a version was registered already from the same rows and parameters
    (``training_fingerprint``: a retried or rerun training registers nothing twice). A plan without
    families makes the search, and so the challenger, empty.
    """
    rows = len(features_train) + len(features_test)
    last = model_registry.last_trained_rows
    new_rows = rows if last is None else rows - last
    registered = model_registry.fingerprints.get(training_fingerprint)
    drift = latest_batch_drift(drift_reports) if retrain_on_drift else None
    drifted = drift is not None and bool(drift["drifted"]) and new_rows > 0
    due = registered is None and (
        last is None or new_rows >= min_new_rows or model_registry.champion is None or drifted
    )
    if registered is not None:
        reason = f"version {registered} was registered from these rows and parameters already"
    elif last is not None:
        reason = f"{new_rows} new rows since the last trained version (minimum {min_new_rows})"
    else:
        reason = "no trained version yet"
    if drift is not None:
        reason += (
            f"; {drift['subject']} {'drifted' if drift['drifted'] else 'did not drift'} "
            f"({drift['drifted_fields']} of {drift['fields']} fields, share {drift['drift_share']:.2f}, "
            f"threshold {drift['share_threshold']:.2f})"
        )
    logger.info("Training %s: %s", "due" if due else "skipped", reason)
    return {
        "families": list(spaces) if due else [],
        "rows": rows,
        "new_rows": new_rows,
        "reason": reason,
        "fingerprint": training_fingerprint,
    }


def _suggest(trial: optuna.Trial, name: str, spec: dict[str, Any]) -> Any:
    """One hyperparameter from its ``parameters_training.yml`` description."""
    if spec["type"] == "int":
        return trial.suggest_int(name, spec["low"], spec["high"], step=spec.get("step", 1))
    if spec["type"] == "float":
        return trial.suggest_float(name, spec["low"], spec["high"], log=spec.get("log", False))
    return trial.suggest_categorical(name, spec["choices"])


def _rows_by_hash(features_train: pd.DataFrame, max_rows: int) -> pd.DataFrame:
    """A deterministic subset (the rows with the smallest hashes), so a step's cost is bounded."""
    if len(features_train) <= max_rows:
        return features_train
    return features_train.sort_values("row_hash").head(max_rows)


def search_hyperparameters(
    features_train: pd.DataFrame, training_plan: dict[str, Any], search: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Optuna per planned family within the trial/time budget: each family's best params and CV macro-F1.

    Each trial is a nested MLflow run under the pipeline's run, with its parameters and CV score.
    """
    families = training_plan["families"]
    rows = _rows_by_hash(features_train, search["max_rows"])
    features, labels = rows.loc[:, list(STORED_FEATURES)], rows[TARGET_COLUMN]
    folds = StratifiedKFold(search["cv_folds"], shuffle=True, random_state=search["seed"])
    results = {}
    for family in families:
        space = search["spaces"][family]

        def objective(trial: optuna.Trial, family: str = family, space: dict = space) -> float:
            params = {name: _suggest(trial, name, spec) for name, spec in space.items()}
            classifier = build_classifier(family, params, search["seed"])
            with threadpool_limits(limits=1, user_api="openmp"):
                score = cross_val_score(classifier, features, labels, cv=folds, scoring="f1_macro").mean()
            with mlflow.start_run(run_name=f"{family}-{trial.number}", nested=True):
                mlflow.set_tag("family", family)
                mlflow.log_params(params)
                mlflow.log_metric("cv_macro_f1", score)
            return score

        study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=search["seed"])
        )
        study.optimize(
            objective, n_trials=search["trials_per_family"], timeout=search["timeout_seconds"] / len(families)
        )
        results[family] = {"params": study.best_params, "cv_macro_f1": study.best_value}
    return results


def search_metrics(search_results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """The best CV macro-F1 of each family searched, as MLflow metrics (``cv_macro_f1.<family>``)."""
    return {family: {"value": result["cv_macro_f1"], "step": 0} for family, result in search_results.items()}


def fit_model(features_train: pd.DataFrame, family: str, params: dict[str, Any], seed: int) -> Pipeline:
    """A family fitted as training fits it (its threading), served on one thread where it has ``n_jobs``."""
    classifier = build_classifier(family, params, seed)
    with threadpool_limits(limits=1, user_api="openmp"):
        model = build_model(classifier).fit(
            features_train.loc[:, list(FEATURE_COLUMNS)], features_train[TARGET_COLUMN]
        )
    if "n_jobs" in classifier.get_params():
        # Served one record at a time, a forest answers several times faster on one thread.
        model.set_params(classifier__n_jobs=1)
    return model


def fit_challenger(
    features_train: pd.DataFrame,
    search_results: dict[str, dict[str, Any]],
    seed: int,
    model_size_budget_mb: float,
    fit_max_rows: int,
) -> dict[str, Any]:
    """The best family by CV score that fits the size budget, fitted on the training rows (at most
    ``fit_max_rows``, those with the smallest hashes) and compressed as the registry stores it:
    ``{"family", "model", "package"}``.

    The search scores families on a subset, so a model's size is known only once fitted on its
    training rows: a family whose stored model exceeds the budget gives way to the next best. When none fits,
    the best is kept (the promotion gate refuses it). Empty when nothing was searched (Kedro passes
    no None between nodes).
    """
    ranked = sorted(search_results.items(), key=lambda item: item[1]["cv_macro_f1"], reverse=True)
    rows = _rows_by_hash(features_train, fit_max_rows)
    candidates = []
    for family, best in ranked:
        logger.info(
            "Candidate: %s (CV macro-F1 %.4f), fitted on %d of %d training rows",
            family, best["cv_macro_f1"], len(rows), len(features_train),
        )  # fmt: skip
        model = fit_model(rows, family, best["params"], seed)
        candidates.append({"family": family, "model": model, "package": CompressedModel(model)})
        size_mb = candidates[-1]["package"].size_bytes / MEGABYTE
        if size_mb <= model_size_budget_mb:
            logger.info(
                "Challenger: %s, %.1f MB stored (budget %s MB)", family, size_mb, model_size_budget_mb
            )
            return candidates[-1]
        logger.warning("%s is %.1f MB stored, over the %s MB budget", family, size_mb, model_size_budget_mb)
    return candidates[0] if candidates else {}


def convert_challenger(
    challenger: dict[str, Any],
    features_test: pd.DataFrame,
    serving_engine: dict[str, Any],
    model_size_budget_mb: float,
) -> dict[str, Any]:
    """The challenger converted for the serving engine and checked against its own ``predict_proba`` on
    every test row (covertype.serving.engine): ``{"stored", "tags"}``, the gzipped graph (None when
    refused) and the version tags saying how it serves. Empty without a challenger.

    The graph must fit in what the size budget leaves after the model itself.
    """
    if not challenger:
        return {}
    left = max(int(model_size_budget_mb * MEGABYTE) - challenger["package"].size_bytes, 0)
    conversion = convert_and_check(challenger["model"], features_test, serving_engine["tolerance"], left)
    return {"stored": conversion.stored, "tags": conversion.tags}


def score_model(model: Pipeline, features_test: pd.DataFrame) -> dict[str, float]:
    """Test accuracy, macro-F1, per-class F1 and one-vs-rest ROC AUC (over the classes present).

    The keys are the MLflow metric names: ``test_accuracy``, ``test_macro_f1``, ``test_roc_auc_ovr``
    and ``test_f1_class.<class>``.
    """
    records, labels = features_test.loc[:, list(FEATURE_COLUMNS)], features_test[TARGET_COLUMN].to_numpy()
    probabilities = model.predict_proba(records)
    predicted = model.classes_[probabilities.argmax(axis=1)]
    per_class = f1_score(labels, predicted, labels=list(CLASSES), average=None, zero_division=0)
    aucs = [
        roc_auc_score(labels == label, probabilities[:, index])
        for index, label in enumerate(model.classes_)
        if 0 < (labels == label).sum() < len(labels)
    ]
    return {
        "test_accuracy": accuracy_score(labels, predicted),
        "test_macro_f1": f1_score(labels, predicted, average="macro"),
        "test_roc_auc_ovr": float(np.mean(aucs)),
        **{f"test_f1_class.{label}": score for label, score in zip(CLASSES, per_class, strict=True)},
    }


def score_challenger(challenger: dict[str, Any], features_test: pd.DataFrame) -> dict[str, float]:
    """The challenger's test scores; none when this run trained no challenger."""
    return score_model(challenger["model"], features_test) if challenger else {}


def as_metrics(scores: dict[str, float]) -> dict[str, dict[str, float]]:
    """Scores as the MLflow metrics of a ``MlflowMetricsHistoryDataset`` (one step each)."""
    return {name: {"value": value, "step": 0} for name, value in scores.items()}


def plot_confusion_matrix(model: Pipeline, features_test: pd.DataFrame) -> Figure:
    """Test confusion matrix with the species names."""
    figure = Figure(figsize=(8, 7), layout="constrained")
    display = ConfusionMatrixDisplay.from_predictions(
        features_test[TARGET_COLUMN],
        model.predict(features_test.loc[:, list(FEATURE_COLUMNS)]),
        labels=list(CLASSES),
        display_labels=[COVER_TYPE_NAMES[label] for label in CLASSES],
        ax=figure.subplots(),
        colorbar=False,
    )
    display.ax_.tick_params(axis="x", labelrotation=45)
    display.ax_.set_title("Test confusion matrix")
    return figure


def rank_feature_importances(model: Pipeline, features_test: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Impurity importances of forests; permutation importances on the test split otherwise."""
    classifier = model.named_steps["classifier"]
    if hasattr(classifier, "feature_importances_"):
        importances, method = classifier.feature_importances_, "impurity"
    else:
        features = model.named_steps["features"].transform(features_test.loc[:, list(FEATURE_COLUMNS)])
        importances = permutation_importance(
            classifier, features, features_test[TARGET_COLUMN], n_repeats=3, random_state=seed
        ).importances_mean
        method = "permutation"
    ranking = pd.DataFrame({"feature": MODEL_FEATURES, "importance": importances, "method": method})
    return ranking.sort_values("importance", ascending=False, ignore_index=True)


def score_champion(model_registry: RegistryState, features_test: pd.DataFrame) -> dict[str, float]:
    """The champion re-scored on today's test split, so both models are judged on the same rows."""
    if model_registry.champion is None:
        return {}
    return score_model(model_registry.champion, features_test)


def promotion_rule(challenger: float, champion: float | None, margin: float) -> tuple[bool, str]:
    """Promote when there is no champion, or when the challenger beats it by at least ``margin``."""
    if champion is None:
        return True, "no champion yet"
    gain = challenger - champion
    if gain >= margin:
        return True, f"beats the champion by {gain:+.4f} (margin {margin})"
    return False, f"does not beat the champion by the margin: {gain:+.4f} < {margin}"


def size_rule(size_bytes: int, budget_mb: float) -> tuple[bool, str]:
    """A model over the size budget is never promoted, whatever its scores."""
    size_mb = size_bytes / MEGABYTE
    if size_mb > budget_mb:
        return False, f"the model is {size_mb:.1f} MB stored, over the {budget_mb} MB budget"
    return True, f"{size_mb:.1f} MB stored (budget {budget_mb} MB)"


def decide_promotion(
    training_plan: dict[str, Any],
    challenger: dict[str, Any],
    challenger_scores: dict[str, float],
    champion_scores: dict[str, float],
    *,
    promotion: dict[str, Any],
    model_size_budget_mb: float,
) -> dict[str, Any]:
    """Whether the challenger takes the champion alias, and why (tagged on the run and the version).

    Without a challenger (the plan searched nothing) the decision is ``skipped``, for the plan's
    reason. A challenger over the size budget is ``rejected``, for that reason.
    """
    if not challenger_scores:
        return {
            "decision": "skipped",
            "promote": False,
            "reason": f"training skipped: {training_plan['reason']}",
        }
    fits, size = size_rule(challenger["package"].size_bytes, model_size_budget_mb)
    if not fits:
        logger.warning("Challenger not promoted: %s", size)
        return {"decision": "rejected", "promote": False, "reason": size}
    metric = promotion["metric"]
    score = challenger_scores[metric]
    champion = champion_scores.get(metric)
    promote, reason = promotion_rule(score, champion, promotion["min_improvement"])
    reason = (
        f"{metric} {score:.4f}"
        + (f" vs champion {champion:.4f}" if champion is not None else "")
        + f": {reason}; {size}"
    )
    logger.info("Challenger %s: %s", "promoted" if promote else "not promoted", reason)
    return {"decision": "promoted" if promote else "rejected", "promote": promote, "reason": reason}


def select_served_model(
    promotion_decision: dict[str, Any], challenger: dict[str, Any], model_registry: RegistryState
) -> Pipeline:
    """The champion once this run is registered: the challenger if promoted, else the standing champion.

    Only a first challenger over the size budget leaves no champion: the run then fails, saying so.
    """
    served = challenger["model"] if promotion_decision["promote"] else model_registry.champion
    if served is None:
        raise ValueError(
            f"no champion to serve: the first challenger was not promoted ({promotion_decision['reason']}); "
            "raise training.model_size_budget_mb or narrow the search spaces of parameters_training.yml"
        )
    return served


#: The challenger's scores that its registered version carries as tags.
VERSION_TAG_METRICS = ("test_accuracy", "test_macro_f1")
#: How many test records the model read back from the artifact store must predict as the fitted one.
CHECK_RECORDS = 200


def prepare_registration(
    challenger: dict[str, Any],
    promotion_decision: dict[str, Any],
    training_plan: dict[str, Any],
    challenger_scores: dict[str, float],
    features_test: pd.DataFrame,
    *,
    challenger_engine: dict[str, Any],
    retention: dict[str, Any],
) -> dict[str, Any]:
    """What the registry stores: the compressed model, its converted model for the serving engine
    (None when refused), an input example in the served types, the test records its stored copy must
    predict as the fitted model (``CHECK_RECORDS``), the tags (the engine's and the training
    fingerprint among them), and how many recent versions keep their model artifacts
    (``retention.keep_last``).

    A skipped decision registers nothing: the registry only tags the run with it.
    """
    return {
        "model": challenger.get("package"),
        "engine_model": challenger_engine.get("stored"),
        "keep_last": retention["keep_last"],
        "input_example": features_test.loc[:, list(FEATURE_COLUMNS)].head(5).reset_index(drop=True),
        "check_records": features_test.loc[:, list(FEATURE_COLUMNS)]
        .head(CHECK_RECORDS)
        .reset_index(drop=True),
        "decision": promotion_decision,
        "tags": {
            TRAINING_ROWS_TAG: str(training_plan["rows"]),
            FINGERPRINT_TAG: training_plan["fingerprint"],
            **({"model_family": challenger["family"]} if challenger else {}),
            "training_reason": training_plan["reason"],
            **{
                name: f"{score:.4f}"
                for name, score in challenger_scores.items()
                if name in VERSION_TAG_METRICS
            },
            **challenger_engine.get("tags", {}),
        },
    }
