"""A loaded model version (the champion, or one asked for), with what the registry says about it.

A version loads what it carries: its converted model when registration proved one
(covertype.serving.engine; only that file is downloaded, no pickle, no test split), else its own
model, which answers through ``predict_proba``. The explanations need the model's own trees: a
version served by the engine downloads its model on its first ``/explain`` only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar

import numpy as np
from mlflow.entities.model_registry import ModelVersion
from sklearn.pipeline import Pipeline

from covertype.data.schema import COVER_TYPE_NAMES
from covertype.registry import ModelRegistry
from covertype.serving.engine import (
    ANSWER_DECIMALS,
    ENGINE,
    ENGINE_TAG,
    MODEL_PATH,
    EngineModel,
    answered_classes,
)
from covertype.serving.explain import TreeExplainer
from covertype.serving.probabilities import class_probabilities
from covertype.serving.records import records_to_frame
from covertype.serving.schema import CovertypeRecord, Explanation, ModelInfo, Prediction

T = TypeVar("T")


def _millis(timestamp: int | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp / 1000, tz=UTC)


class Predictor(Protocol):
    """Class probabilities of validated records, in ``classes`` order, by the route ``name``."""

    name: str
    classes: tuple[int, ...]

    def record_probabilities(self, records: Sequence[CovertypeRecord]) -> np.ndarray: ...


class OwnPredictProba:
    """A version without a converted model: its own pipeline's ``predict_proba``."""

    name = MODEL_PATH

    def __init__(self, model: Pipeline) -> None:
        self.model = model
        self.classes = tuple(int(label) for label in model.classes_)

    def record_probabilities(self, records: Sequence[CovertypeRecord]) -> np.ndarray:
        return class_probabilities(self.model, records_to_frame(records))


class Lazy(Generic[T]):
    """A value made on first use, once, whichever thread asks first."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        with self._lock:
            if self._value is None:
                self._value = self._make()
            return self._value


@dataclass(frozen=True)
class LoadedVersion:
    """A loaded model version, the route that computes its answers, and its registry facts.

    Immutable, so a reload swaps it whole.
    """

    predictor: Predictor
    info: ModelInfo
    explainer: Lazy[TreeExplainer]
    #: The version's own fitted model, loaded on first use (explanations, the local model cache).
    model: Lazy[Pipeline] | None = None

    @property
    def classes(self) -> tuple[int, ...]:
        """The class labels, in the order of the probabilities' columns."""
        return self.predictor.classes

    def with_aliases(self, aliases: Iterable[str]) -> LoadedVersion:
        """The same version, named by the aliases pointing at it now (aliases move, versions do not)."""
        return replace(self, info=self.info.model_copy(update={"aliases": sorted(aliases)}))

    def probabilities(self, records: Sequence[CovertypeRecord]) -> np.ndarray:
        """(records, classes) probabilities, in ``classes`` order."""
        return self.predictor.record_probabilities(records)

    def predictions(self, probabilities: np.ndarray) -> list[Prediction]:
        """The answers for records of these ``probabilities``: the most probable class of each, named."""
        names = [COVER_TYPE_NAMES[label] for label in self.classes]
        best = np.asarray(self.classes)[answered_classes(probabilities)]
        shown = probabilities.round(ANSWER_DECIMALS).tolist()
        version, aliases = self.info.version, self.info.aliases
        return [
            Prediction(
                cover_type=int(label),
                cover_type_name=COVER_TYPE_NAMES[int(label)],
                probabilities=dict(zip(names, row, strict=True)),
                model_version=version,
                model_aliases=aliases,
            )
            for label, row in zip(best, shown, strict=True)
        ]

    def predict(self, records: Sequence[CovertypeRecord]) -> list[Prediction]:
        return self.predictions(self.probabilities(records))

    def explain(self, records: Sequence[CovertypeRecord]) -> list[Explanation]:
        """Each record's predicted class and every field's contribution to the model's output for it."""
        explainer = self.explainer.get()
        return [
            Explanation(
                cover_type=explainer.classes[record.class_index],
                cover_type_name=COVER_TYPE_NAMES[explainer.classes[record.class_index]],
                output=explainer.output,
                value=record.value,
                base_value=record.base_value,
                contributions=record.contributions,
                model_version=self.info.version,
                model_aliases=self.info.aliases,
            )
            for record in explainer.explain(records)
        ]


def load_champion(registry: ModelRegistry, version: ModelVersion | None = None) -> LoadedVersion:
    """Load the champion with its run metrics and tags, ready to serve.

    ``version``: the one the caller already found behind the alias, loaded even if the alias has
    moved since, so that what was checked is what gets loaded. Raises ``NoChampion`` when the
    registry has none yet.
    """
    if version is None:
        version = registry.champion()
        if version is None:
            raise NoChampion(registry)
    return load_version(registry, version, followed_alias=registry.champion_alias)


def load_version(
    registry: ModelRegistry, version: ModelVersion, followed_alias: str | None = None
) -> LoadedVersion:
    """Load what ``version`` carries to serve: its converted model if it has one, else its own model.

    ``followed_alias``: the alias the service serves it for (the champion's), if any.
    """
    tags = dict(version.tags)
    predictor: Predictor
    if tags.get(ENGINE_TAG) == ENGINE:
        predictor = EngineModel.from_stored(registry.load_engine_model(version))
        model = Lazy(lambda: registry.load_model(version))
    else:  # refused at registration, or registered before the engine: the model serves itself
        own = OwnPredictProba(registry.load_model(version))
        predictor, model = own, Lazy(lambda: own.model)
    registered_at = _millis(version.creation_timestamp)
    info = ModelInfo(
        name=registry.model_name,
        version=str(version.version),
        alias=followed_alias,
        aliases=sorted(version.aliases),
        run_id=version.run_id,
        metrics=registry.run_metrics(version),
        tags=tags,
        registered_at=registered_at,
        # Training moves the alias when it registers a version it promotes; a hand-moved alias has no time.
        promoted_at=registered_at if tags.get("promotion_decision") == "promoted" else None,
        loaded_at=datetime.now(tz=UTC),
        prediction_path=predictor.name,
    )
    return LoadedVersion(
        predictor=predictor, info=info, explainer=Lazy(lambda: TreeExplainer(model.get())), model=model
    )


def cached_version(model: Pipeline, info: ModelInfo) -> LoadedVersion:
    """A version from the service's local model cache (covertype.serving.model_cache): the version's own
    model, checksummed there, answers through its own ``predict_proba``."""
    own = OwnPredictProba(model)
    return LoadedVersion(
        predictor=own,
        info=info.model_copy(update={"prediction_path": own.name}),
        explainer=Lazy(lambda: TreeExplainer(model)),
        model=Lazy(lambda: model),
    )


class NoChampion(LookupError):
    """The registry has no version behind the champion alias yet."""

    def __init__(self, registry: ModelRegistry) -> None:
        super().__init__(
            f"no model behind {registry.describe(registry.champion_alias)} yet in {registry.registry_uri}: "
            "run training (`make demo`, `kedro run` or the Airflow DAG); "
            "the service loads the first champion itself"
        )
