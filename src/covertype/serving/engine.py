"""The served classifier on ONNX Runtime, loaded from the graph its registered version carries.

Registration converts and checks the challenger (covertype.serving.conversion) and stores the graph
gzipped with the version, tagged (``ENGINE_TAG`` and the tags below); the service loads the graph
alone: no pickle, no test split, no feature store.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence

import numpy as np
import onnxruntime

from covertype.registry import engine_graph
from covertype.serving.records import records_to_features
from covertype.serving.schema import CovertypeRecord

#: The engine's name, in the version's tags, ``model_info`` and the ``covertype_model_info`` metric.
ENGINE = "onnxruntime"
#: The route of a version without a converted model: the model's own ``predict_proba``.
MODEL_PATH = "model_predict_proba"
#: The version tags registration writes: the route that serves it, the test rows the converted model
#: was checked on, the largest probability difference found, and why a conversion was refused.
ENGINE_TAG = "serving_engine"
ROWS_CHECKED_TAG = "serving_engine_rows_checked"
MAX_DIFFERENCE_TAG = "serving_engine_max_abs_diff"
REFUSAL_TAG = "serving_engine_refused"
#: The decimals of an answer's probabilities.
ANSWER_DECIMALS = 6
#: The graph's input and output names.
INPUT, OUTPUT = "X", "probabilities"
#: The graph's metadata key with the class labels, in the order of the probabilities' columns.
CLASSES_KEY = "covertype.classes"


class EngineModel:
    """A converted classifier in an ONNX Runtime session: class probabilities of feature matrices.

    ``run`` is thread-safe: concurrent requests run on their own threads at once (the service hands
    requests over ``INLINE_UP_TO_RECORDS`` to threads), each on one intra-op thread by default. ONNX
    Runtime's default, a pool of one spinning thread per CPU, was slower from 100 records on 2 cores
    (``make bench-engine``) and its spinning took the CPU the other requests and the HTTP layer need
    (the service's CPU per 100-record request went from 19.4 to 9.7 ms with one thread, and ``make
    bench-serving``'s throughput from 0.51x to 0.69x the BentoML echo's).
    """

    name = ENGINE

    def __init__(self, graph: bytes, threads: int = 1) -> None:
        """``threads``: the session's intra-op threads; 0 is ONNX Runtime's choice (a spinning pool)."""
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        # The graph is one tree operator: the optimiser's passes find nothing and cost ~40 ms a load.
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        self._session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        metadata = self._session.get_modelmeta().custom_metadata_map
        if CLASSES_KEY not in metadata:
            raise ValueError(f"the ONNX graph has no {CLASSES_KEY!r} metadata: not converted by to_onnx")
        self.classes: tuple[int, ...] = tuple(json.loads(metadata[CLASSES_KEY]))

    @classmethod
    def from_stored(cls, stored: bytes) -> EngineModel:
        """The engine of a graph as the registry stores it (``compress``) or hands it over."""
        return cls(engine_graph(stored))

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(records, classes) probabilities of a feature matrix (``MODEL_FEATURES`` columns), float64."""
        (probabilities,) = self._session.run([OUTPUT], {INPUT: features.astype(np.float32, copy=False)})
        return probabilities.astype(np.float64)

    def record_probabilities(self, records: Sequence[CovertypeRecord]) -> np.ndarray:
        return self.probabilities(records_to_features(records))


def compress(graph: bytes) -> bytes:
    """A graph as stored with the version: gzip's fastest level (a forest's graph shrinks ~8x)."""
    return gzip.compress(graph, compresslevel=1, mtime=0)


def answered_classes(probabilities: np.ndarray) -> np.ndarray:
    """Each row's class position as an answer names it: the first of the largest probabilities as sent
    (``ANSWER_DECIMALS``), so that a tie the model breaks by class order is not broken by float32
    rounding in the engine, and the class is the one the answer's own probabilities show."""
    return probabilities.round(ANSWER_DECIMALS).argmax(axis=1)
