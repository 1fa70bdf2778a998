"""A loaded model version (the champion, or one asked for), with what the registry says about it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion

from covertype.data.schema import COVER_TYPE_NAMES
from covertype.registry import ModelRegistry
from covertype.serving.fast_path import Predictor, predictor_for
from covertype.serving.schema import CovertypeRecord, ModelInfo, Prediction


def _millis(timestamp: int | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp / 1000, tz=UTC)


@dataclass(frozen=True)
class LoadedVersion:
    """A loaded model version, the route that computes its answers, and its registry facts.

    Immutable, so a reload swaps it whole.
    """

    model: Any
    predictor: Predictor
    info: ModelInfo

    @property
    def classes(self) -> tuple[int, ...]:
        """The class labels, in the order of the probabilities' columns."""
        return tuple(int(label) for label in self.model.classes_)

    def with_aliases(self, aliases: Iterable[str]) -> LoadedVersion:
        """The same version, named by the aliases pointing at it now (aliases move, versions do not)."""
        return replace(self, info=self.info.model_copy(update={"aliases": sorted(aliases)}))

    def predict(self, records: list[CovertypeRecord]) -> list[Prediction]:
        probabilities = self.predictor.probabilities(records)
        names = [COVER_TYPE_NAMES[label] for label in self.classes]
        best = np.asarray(self.classes)[probabilities.argmax(axis=1)]
        version, aliases = self.info.version, self.info.aliases
        return [
            Prediction(
                cover_type=int(label),
                cover_type_name=COVER_TYPE_NAMES[int(label)],
                probabilities=dict(zip(names, (round(float(p), 6) for p in row), strict=True)),
                model_version=version,
                model_aliases=aliases,
            )
            for label, row in zip(best, probabilities, strict=True)
        ]


def load_champion(
    registry: ModelRegistry, version: ModelVersion | None = None, test_records: pd.DataFrame | None = None
) -> LoadedVersion:
    """Load the champion with its run metrics and tags, ready to serve.

    ``version``: the one the caller already found behind the alias, loaded even if the alias has
    moved since, so that what was checked is what gets loaded. ``test_records``: the test split the
    fast route must match the model on before it serves (covertype.serving.fast_path); without it
    the model's own ``predict_proba`` serves. Raises ``NoChampion`` when the registry has none yet.
    """
    if version is None:
        version = registry.champion()
        if version is None:
            raise NoChampion(registry)
    return load_version(registry, version, test_records, followed_alias=registry.champion_alias)


def load_version(
    registry: ModelRegistry,
    version: ModelVersion,
    test_records: pd.DataFrame | None,
    followed_alias: str | None = None,
) -> LoadedVersion:
    """Load ``version``'s own artifacts with its run metrics and tags, ready to serve.

    ``test_records``: the test split its fast route must match it on (see ``load_champion``).
    ``followed_alias``: the alias the service serves it for (the champion's), if any.
    """
    model = registry.load_model(version)
    tags = dict(version.tags)
    registered_at = _millis(version.creation_timestamp)
    predictor = predictor_for(model, test_records)
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
    return LoadedVersion(model=model, predictor=predictor, info=info)


class NoChampion(LookupError):
    """The registry has no version behind the champion alias yet."""

    def __init__(self, registry: ModelRegistry) -> None:
        super().__init__(
            f"no model behind {registry.describe(registry.champion_alias)} yet in {registry.registry_uri}: "
            "run training (`make demo`, `kedro run` or the Airflow DAG); "
            "the service loads the first champion itself"
        )
