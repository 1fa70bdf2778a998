"""A served model's class probabilities by a faster route than its own ``predict_proba``, proven equal first.

One record through the model's pipeline costs a pandas frame of nullable columns, the feature step's
frame, sklearn's checks and a call per tree. The fast route computes the features straight from the
validated records in NumPy (``covertype.features.feature_matrix``, the code the model's feature step
runs) and evaluates the model's trees in one vectorised walk, or LightGBM's own ``Booster`` on the
matrix. Which route is used is decided per model when it is loaded (``predictor_for``): the candidate
must give the same class and probabilities within ``PARITY_TOLERANCE`` as the model's own
``predict_proba`` on the whole test split (the catalog's ``features_test``, which training scores
on); otherwise, or for a family without a fast route, the model's own path serves. Requests of
more than ``FAST_UP_TO_RECORDS`` records take the model's own path after a tree walk: the walk
costs records x trees x depth, where sklearn's per-tree code spreads over the CPUs. LightGBM's
Booster takes every size (it spreads a batch over the CPUs itself).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import numpy as np
import pandas as pd
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog
from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.pipeline import Pipeline

from covertype.config import Settings
from covertype.data.schema import FEATURE_COLUMNS, NUMERIC_COLUMNS, SOIL_TYPES, WILDERNESS_AREAS
from covertype.features import MODEL_FEATURES, feature_matrix
from covertype.paths import PROJECT_ROOT
from covertype.serving.probabilities import class_probabilities
from covertype.serving.schema import CovertypeRecord
from covertype.settings import CONFIG_LOADER_ARGS

logger = logging.getLogger(__name__)

#: The parity rule (issue 13): the same class, and every probability within this of the model's own.
PARITY_TOLERANCE = 1e-6
#: The catalog entry of the test split training scores every model on.
TEST_SPLIT_DATASET = "features_test"
#: Requests up to this many records take a tree walk; larger ones the model's own (threaded) path.
FAST_UP_TO_RECORDS = 16
#: The name of the model's own route, in ``model_info`` and the ``covertype_model_info`` metric.
MODEL_PATH = "model_predict_proba"

_numbers_of = attrgetter(*NUMERIC_COLUMNS)
_SOIL_POSITIONS = {code: position for position, code in enumerate(SOIL_TYPES)}
_WILDERNESS_POSITIONS = {name: position for position, name in enumerate(WILDERNESS_AREAS)}


def records_to_frame(records: Sequence[CovertypeRecord]) -> pd.DataFrame:
    """Validated records -> the frame the model was trained on (Int64 numbers, string codes)."""
    return pd.DataFrame(
        {
            name: pd.array(
                [getattr(record, name) for record in records],
                dtype="Int64" if name in NUMERIC_COLUMNS else "string",
            )
            for name in FEATURE_COLUMNS
        }
    )


def records_to_features(records: Sequence[CovertypeRecord]) -> np.ndarray:
    """The model's feature matrix of validated records, without pandas (~30 µs for one record)."""
    numbers = np.array([_numbers_of(record) for record in records], dtype=np.float64).reshape(
        len(records), len(NUMERIC_COLUMNS)
    )
    soil = np.array([_SOIL_POSITIONS.get(record.Soil_Type, -1) for record in records], dtype=np.intp)
    wilderness = np.array(
        [_WILDERNESS_POSITIONS.get(record.Wilderness_Area, -1) for record in records], dtype=np.intp
    )
    columns = {name: numbers[:, index] for index, name in enumerate(NUMERIC_COLUMNS)}
    return feature_matrix(columns, soil, wilderness)


@dataclass(frozen=True)
class Predictor:
    """Class probabilities of validated records, in the model's ``classes_`` order, by a named route."""

    name: str
    model: Pipeline
    #: The fast route on the feature matrix, or None when the model's own path serves everything.
    fast: Callable[[np.ndarray], np.ndarray] | None = None
    #: The most records a request may have to take the fast route (None: any number).
    fast_up_to: int | None = FAST_UP_TO_RECORDS

    def probabilities(self, records: Sequence[CovertypeRecord]) -> np.ndarray:
        if self.fast is not None and (self.fast_up_to is None or len(records) <= self.fast_up_to):
            return self.fast(records_to_features(records))
        return class_probabilities(self.model, records_to_frame(records))


@dataclass(frozen=True)
class TreeArrays:
    """Every tree of an ensemble as flat node arrays, walked for all trees (and records) at once.

    A leaf points at itself, so ``depth`` steps bring every walk to its leaf; ``leaf_values`` holds
    each node's contribution (a tree's normalised class counts, or a boosting leaf's raw value).
    """

    roots: np.ndarray  # (trees,) the index of each tree's root
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaf_values: np.ndarray  # (nodes, width)
    depth: int

    @classmethod
    def concatenate(cls, trees: Sequence[dict[str, np.ndarray]], depth: int) -> TreeArrays:
        """``trees``: each tree's ``feature``, ``threshold``, ``left``, ``right`` (-1: leaf), ``values``."""
        offsets = np.cumsum([0, *(len(tree["feature"]) for tree in trees)])
        lefts, rights = [], []
        for offset, tree in zip(offsets, trees, strict=False):
            own = np.arange(len(tree["feature"])) + offset
            leaf = tree["left"] < 0
            lefts.append(np.where(leaf, own, tree["left"] + offset))
            rights.append(np.where(leaf, own, tree["right"] + offset))
        return cls(
            roots=offsets[:-1].astype(np.intp),
            feature=np.concatenate([np.maximum(tree["feature"], 0) for tree in trees]).astype(np.intp),
            threshold=np.concatenate([tree["threshold"] for tree in trees]).astype(np.float64),
            left=np.concatenate(lefts).astype(np.intp),
            right=np.concatenate(rights).astype(np.intp),
            leaf_values=np.concatenate([tree["values"] for tree in trees]).astype(np.float64),
            depth=depth,
        )

    def leaf_contributions(self, X: np.ndarray) -> np.ndarray:
        """(trees, records, width): each tree's leaf value for each row of ``X``."""
        rows = np.arange(len(X))[None, :]
        node = np.repeat(self.roots[:, None], len(X), axis=1)
        for _ in range(self.depth):
            go_left = X[rows, self.feature[node]] <= self.threshold[node]
            node = np.where(go_left, self.left[node], self.right[node])
        return self.leaf_values[node]


def forest_route(forest: RandomForestClassifier | ExtraTreesClassifier) -> Callable[[np.ndarray], np.ndarray]:
    """The forest's ``predict_proba``: float32 inputs, each tree's normalised leaf, summed in tree order."""
    trees = []
    for estimator in forest.estimators_:
        tree = estimator.tree_
        counts = tree.value[:, 0, : forest.n_classes_]
        normaliser = counts.sum(axis=1)[:, None]
        normaliser[normaliser == 0.0] = 1.0
        trees.append(
            {
                "feature": tree.feature,
                "threshold": tree.threshold,
                "left": tree.children_left,
                "right": tree.children_right,
                "values": counts / normaliser,
            }
        )
    arrays = TreeArrays.concatenate(trees, depth=max(e.tree_.max_depth for e in forest.estimators_))
    count = len(forest.estimators_)

    def probabilities(X: np.ndarray) -> np.ndarray:
        # Summed over axis 0 (not the contiguous one), NumPy adds tree after tree, as the forest does.
        return arrays.leaf_contributions(X.astype(np.float32)).sum(axis=0) / count

    return probabilities


def boosting_route(model: HistGradientBoostingClassifier) -> Callable[[np.ndarray], np.ndarray] | None:
    """HistGradientBoosting's ``predict_proba``: baseline plus each iteration's leaves, its own link.

    None for a model with categorical splits. Records never miss a value (the contract), so the
    side a node sends missing values to does not matter here.
    """
    predictors = [tree for iteration in model._predictors for tree in iteration]
    if any(tree.nodes["is_categorical"].any() for tree in predictors):
        return None
    per_iteration = len(model._predictors[0])
    trees = [
        {
            "feature": tree.nodes["feature_idx"].astype(np.intp),
            "threshold": tree.nodes["num_threshold"],
            "left": np.where(tree.nodes["is_leaf"], -1, tree.nodes["left"].astype(np.intp)),
            "right": np.where(tree.nodes["is_leaf"], -1, tree.nodes["right"].astype(np.intp)),
            "values": tree.nodes["value"][:, None],
        }
        for tree in predictors
    ]
    arrays = TreeArrays.concatenate(trees, depth=int(max(tree.nodes["depth"].max() for tree in predictors)))
    baseline = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(1, 1, per_iteration)

    def probabilities(X: np.ndarray) -> np.ndarray:
        leaves = arrays.leaf_contributions(X)[:, :, 0]  # (iterations x classes, records)
        raw = leaves.reshape(-1, per_iteration, len(X)).transpose(0, 2, 1)
        # The baseline first, then iteration after iteration, as sklearn accumulates raw predictions.
        raw = np.concatenate([np.broadcast_to(baseline, (1, len(X), per_iteration)), raw]).sum(axis=0)
        return model._loss.predict_proba(raw)

    return probabilities


def lightgbm_route(classifier: Any) -> Callable[[np.ndarray], np.ndarray]:
    """LightGBM's ``Booster.predict`` on the matrix: what ``LGBMClassifier.predict_proba`` calls."""
    booster = classifier.booster_

    def probabilities(X: np.ndarray) -> np.ndarray:
        predicted = booster.predict(X)
        return np.column_stack([1.0 - predicted, predicted]) if predicted.ndim == 1 else predicted

    return probabilities


Route = tuple[str, Callable[[np.ndarray], np.ndarray], int | None]


def candidate_route(model: Pipeline) -> Route | None:
    """The family's fast route (name, function, most records), or None for another family or pipeline."""
    if not isinstance(model, Pipeline) or len(model.steps) != 2:
        return None
    # The feature step is pickled by value with the model (its own class object): whether our
    # feature code computes what it computes is for the parity check to show, not for isinstance.
    classifier = model.steps[-1][1]
    if getattr(classifier, "n_features_in_", None) != len(MODEL_FEATURES):
        return None
    if isinstance(classifier, RandomForestClassifier | ExtraTreesClassifier) and classifier.n_outputs_ == 1:
        return "numpy_tree_walk", forest_route(classifier), FAST_UP_TO_RECORDS
    if isinstance(classifier, HistGradientBoostingClassifier):
        route = boosting_route(classifier)
        return None if route is None else ("numpy_tree_walk", route, FAST_UP_TO_RECORDS)
    if type(classifier).__name__ == "LGBMClassifier":
        return "lightgbm_booster", lightgbm_route(classifier), None
    return None


def parity_failure(
    model: Pipeline, fast: Callable[[np.ndarray], np.ndarray], test_records: pd.DataFrame
) -> str | None:
    """Why ``fast`` differs from ``model.predict_proba`` on every row of ``test_records``; None if not.

    The rows go through the served route: validated records, then the fast feature matrix.
    """
    frame = test_records.loc[:, list(FEATURE_COLUMNS)].reset_index(drop=True)
    reference = model.predict_proba(frame)
    records = [CovertypeRecord.model_construct(**row) for row in frame.to_dict("records")]
    chunks = range(0, len(records), 1000)
    candidate = np.concatenate([fast(records_to_features(records[start : start + 1000])) for start in chunks])
    if candidate.shape != reference.shape:
        return f"shape {candidate.shape} instead of {reference.shape}"
    worst = float(np.abs(candidate - reference).max())
    if worst > PARITY_TOLERANCE:
        return f"a probability differs by {worst:.3g} (tolerance {PARITY_TOLERANCE})"
    classes = (candidate.argmax(axis=1) != reference.argmax(axis=1)).sum()
    if classes:
        return f"{classes} of {len(frame)} records get another class"
    return None


def predictor_for(model: Pipeline, test_records: pd.DataFrame | None) -> Predictor:
    """The route to serve ``model`` by: the fast one if it matches the model on ``test_records``."""
    own = Predictor(MODEL_PATH, model)
    candidate = candidate_route(model)
    if candidate is None:
        logger.info("no fast route for this model: serving with %s", MODEL_PATH)
        return own
    name, fast, fast_up_to = candidate
    if test_records is None or test_records.empty:
        logger.warning("no test split to check %s against: serving with %s", name, MODEL_PATH)
        return own
    try:
        failure = parity_failure(model, fast, test_records)
    except Exception as error:  # a route that cannot even run on the test split is refused the same way
        failure = f"{type(error).__name__}: {error}"
    if failure is not None:
        logger.warning("%s refused (%s): serving with %s", name, failure, MODEL_PATH)
        return own
    logger.info("%s matches predict_proba on the %d test records: serving with it", name, len(test_records))
    return Predictor(name, model, fast, fast_up_to)


def load_test_split(settings: Settings) -> pd.DataFrame | None:
    """The catalog's ``features_test`` of the settings' Kedro environment; None (logged) if unreadable."""
    loader = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"),
        **{**CONFIG_LOADER_ARGS, "default_run_env": settings.kedro_env},
    )
    try:
        entry = loader["catalog"][TEST_SPLIT_DATASET]
        catalog = DataCatalog.from_config({TEST_SPLIT_DATASET: entry}, loader["credentials"])
        return catalog.load(TEST_SPLIT_DATASET)
    except Exception as error:  # no features computed yet, an unreachable feature store
        logger.warning("the test split (%s) could not be read: %s", TEST_SPLIT_DATASET, error)
        return None
