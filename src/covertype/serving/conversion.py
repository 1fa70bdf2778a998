"""The challenger converted for ONNX Runtime and proven at registration (covertype.serving.engine serves it).

Training converts the challenger it registers (``convert_and_check``): the classifier behind the
feature step becomes an ONNX graph (skl2onnx for scikit-learn's forests, onnxmltools for LightGBM;
ONNX's ``TreeEnsembleClassifier`` operator, which spreads a batch over the CPUs), and the graph is
checked against the model's own ``predict_proba`` on every row of the test split, through the path
the service runs (validated records, then ``records_to_features``). It passes when the class the
service would answer (``answered_classes``) is the model's ``predict`` on every row and no
probability is further than the tolerance (parameters_training.yml,
``training.serving_engine.tolerance``, at most ``LOOSEST_TOLERANCE``): ONNX's tree operators hold
their thresholds in float32, so a value within float32 rounding of a threshold could take the other
branch, which is what the check would show. The graph is stored gzipped with the version, and the
version is tagged with the engine that serves it, the rows checked and the largest difference; a
version whose conversion or check fails is tagged with why and serves through its own
``predict_proba``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from onnxmltools import convert_lightgbm
from onnxmltools.convert.common.data_types import FloatTensorType
from skl2onnx import to_onnx as sklearn_to_onnx
from sklearn.pipeline import Pipeline

from covertype.data.schema import FEATURE_COLUMNS
from covertype.features import MODEL_FEATURES
from covertype.serving.engine import (
    CLASSES_KEY,
    ENGINE,
    ENGINE_TAG,
    INPUT,
    MAX_DIFFERENCE_TAG,
    MODEL_PATH,
    OUTPUT,
    REFUSAL_TAG,
    ROWS_CHECKED_TAG,
    EngineModel,
    answered_classes,
    compress,
)
from covertype.serving.schema import CovertypeRecord

logger = logging.getLogger(__name__)

#: The issue's bound: a tolerance looser than this is refused as a setting.
LOOSEST_TOLERANCE = 1e-5
#: The opsets ONNX Runtime runs the converted forests with (ai.onnx.ml 3: TreeEnsembleClassifier).
SKLEARN_OPSETS = {"": 17, "ai.onnx.ml": 3}
#: onnxmltools takes one opset number for LightGBM (a dict raises TypeError; 17 is refused).
LIGHTGBM_OPSET = 15
#: Rows per call when checking: the service's largest batches, and bounded memory.
CHECK_CHUNK = 1000


class ConversionFailed(ValueError):
    """The classifier could not be converted, or its graph differs from the model: the message says why."""


def to_onnx(model: Pipeline) -> bytes:
    """The classifier of ``model`` (after its feature step) as a serialised ONNX graph, float32 input.

    Raises ``ConversionFailed`` for a family or a model the converters do not take.
    """
    classifier = model.steps[-1][1]
    family = type(classifier).__name__
    if getattr(classifier, "n_features_in_", None) != len(MODEL_FEATURES):
        raise ConversionFailed(
            f"{family} takes {classifier.n_features_in_} features, not {len(MODEL_FEATURES)}"
        )
    try:
        if family == "LGBMClassifier":
            graph = convert_lightgbm(
                classifier,
                initial_types=[(INPUT, FloatTensorType([None, len(MODEL_FEATURES)]))],
                target_opset=LIGHTGBM_OPSET,
                zipmap=False,
            )
        else:
            graph = sklearn_to_onnx(
                classifier,
                np.zeros((1, len(MODEL_FEATURES)), dtype=np.float32),
                options={id(classifier): {"zipmap": False}},
                target_opset=SKLEARN_OPSETS,
            )
    except Exception as error:  # a converter's refusal is a fact about the model, not a failed run
        raise ConversionFailed(
            f"{family} could not be converted ({type(error).__name__}: {_first_line(error)})"
        ) from error
    if [output.name for output in graph.graph.output][-1:] != [OUTPUT]:
        raise ConversionFailed(f"{family}'s graph has no {OUTPUT!r} output")
    entry = graph.metadata_props.add()
    entry.key, entry.value = CLASSES_KEY, json.dumps([int(label) for label in classifier.classes_])
    return graph.SerializeToString()


def _first_line(error: Exception) -> str:
    """The converters' messages can hold whole attribute arrays: their first line says enough."""
    return str(error).strip().splitlines()[0][:300] if str(error).strip() else ""


@dataclass(frozen=True)
class EngineCheck:
    """The converted model against the model's own ``predict_proba`` on every row of a test split."""

    rows: int
    max_abs_difference: float
    rows_of_another_class: int
    tolerance: float

    @property
    def failure(self) -> str | None:
        """Why the converted model may not serve, or None when it matches."""
        if self.rows_of_another_class:
            return f"{self.rows_of_another_class} of {self.rows} test rows get another class"
        if not self.max_abs_difference <= self.tolerance:  # NaN fails too
            return (
                f"a probability differs by {self.max_abs_difference:.3g} from predict_proba "
                f"(tolerance {self.tolerance:g})"
            )
        return None


def check(model: Pipeline, engine: EngineModel, test_records: pd.DataFrame, tolerance: float) -> EngineCheck:
    """``engine`` against ``model.predict_proba`` on every row of ``test_records``, as the service runs it."""
    frame = test_records.loc[:, list(FEATURE_COLUMNS)].reset_index(drop=True)
    reference = model.predict_proba(frame)
    records = [CovertypeRecord.model_construct(**row) for row in frame.to_dict("records")]
    candidate = np.concatenate(
        [
            engine.record_probabilities(records[start : start + CHECK_CHUNK])
            for start in range(0, len(records), CHECK_CHUNK)
        ]
    )
    if engine.classes != tuple(int(label) for label in model.classes_) or candidate.shape != reference.shape:
        return EngineCheck(len(frame), float("inf"), len(frame), tolerance)
    return EngineCheck(
        rows=len(frame),
        max_abs_difference=float(np.abs(candidate - reference).max()),
        rows_of_another_class=int((answered_classes(candidate) != reference.argmax(axis=1)).sum()),
        tolerance=tolerance,
    )


@dataclass(frozen=True)
class Conversion:
    """What registration stores about the engine: the gzipped graph (None when refused) and the tags."""

    stored: bytes | None
    tags: dict[str, str]

    @property
    def engine(self) -> str:
        return self.tags[ENGINE_TAG]


def refused(reason: str) -> Conversion:
    """A version that serves through its own ``predict_proba``, tagged with why."""
    logger.warning("The challenger serves through %s: %s", MODEL_PATH, reason)
    return Conversion(None, {ENGINE_TAG: MODEL_PATH, REFUSAL_TAG: reason})


def convert_and_check(
    model: Pipeline, test_records: pd.DataFrame, tolerance: float, max_stored_bytes: int | None = None
) -> Conversion:
    """``model`` converted and checked on every row of ``test_records``; refused (with why) otherwise.

    ``max_stored_bytes``: what the gzipped graph may take (the size budget left by the model itself).
    """
    if not 0 <= tolerance <= LOOSEST_TOLERANCE:
        raise ValueError(f"the engine's tolerance must be within [0, {LOOSEST_TOLERANCE:g}], not {tolerance}")
    if test_records.empty:
        return refused("no test rows to check the converted model on")
    try:
        graph = to_onnx(model)
    except ConversionFailed as failure:
        return refused(str(failure))
    stored = compress(graph)
    if max_stored_bytes is not None and len(stored) > max_stored_bytes:
        return refused(
            f"the converted model takes {len(stored):,} bytes stored, over the {max_stored_bytes:,} "
            "left in the size budget"
        )
    result = check(model, EngineModel(graph), test_records, tolerance)
    tags = {ROWS_CHECKED_TAG: str(result.rows), MAX_DIFFERENCE_TAG: f"{result.max_abs_difference:.3g}"}
    if result.failure is not None:
        return Conversion(None, {**refused(result.failure).tags, **tags})
    logger.info(
        "The challenger serves on %s: the same class as predict_proba on all %d test rows, "
        "probabilities within %.3g (tolerance %g)",
        ENGINE, result.rows, result.max_abs_difference, tolerance,
    )  # fmt: skip
    return Conversion(stored, {ENGINE_TAG: ENGINE, **tags})
