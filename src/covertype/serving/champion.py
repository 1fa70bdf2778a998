"""The model behind a registry alias, with what the registry says about it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from covertype.data.schema import COVER_TYPE_NAMES, FEATURE_COLUMNS, NUMERIC_COLUMNS
from covertype.serving.probabilities import class_probabilities
from covertype.serving.schema import CovertypeRecord, ModelInfo, Prediction

MODEL_NAME = "covertype"
CHAMPION_ALIAS = "champion"
#: kedro-mlflow's embedded default (conf/base/mlflow.yml), relative to the project root.
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def tracking_uri() -> str:
    """The registry to read: MLFLOW_TRACKING_URI when set, else the project's embedded store."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def _millis(timestamp: int | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp / 1000, tz=UTC)


def records_to_frame(records: list[CovertypeRecord]) -> pd.DataFrame:
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


@dataclass(frozen=True)
class Champion:
    """A loaded model version and its registry facts; immutable, so a reload swaps it whole."""

    model: object
    info: ModelInfo

    def predict(self, records: list[CovertypeRecord]) -> list[Prediction]:
        probabilities = class_probabilities(self.model, records_to_frame(records))
        classes = [int(label) for label in self.model.classes_]
        names = [COVER_TYPE_NAMES[label] for label in classes]
        best = np.asarray(classes)[probabilities.argmax(axis=1)]
        return [
            Prediction(
                cover_type=int(label),
                cover_type_name=COVER_TYPE_NAMES[int(label)],
                probabilities=dict(zip(names, (round(float(p), 6) for p in row), strict=True)),
            )
            for label, row in zip(best, probabilities, strict=True)
        ]


def registry_client() -> MlflowClient:
    """A client of the configured store; nothing process-wide changes (no MLflow globals or env vars)."""
    uri = tracking_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def champion_version(name: str = MODEL_NAME, alias: str = CHAMPION_ALIAS) -> str:
    """The version number the alias points at right now (a cheap registry call, no download)."""
    return str(registry_client().get_model_version_by_alias(name, alias).version)


def load_champion(name: str = MODEL_NAME, alias: str = CHAMPION_ALIAS, number: str | None = None) -> Champion:
    """Load the version behind ``models:/<name>@<alias>`` with its run metrics and tags, ready to serve.

    ``number``: the version the caller already found behind the alias, loaded even if the alias has
    moved since, so that what was checked is what gets loaded.
    """
    client = registry_client()
    if number is None:
        version = client.get_model_version_by_alias(name, alias)
    else:
        version = client.get_model_version(name, number)
    # This version's own artifacts (not the alias, which may move while this loads), found through
    # this client rather than the process-wide registry a ``models:/`` URI would go through.
    model = mlflow.sklearn.load_model(client.get_model_version_download_uri(name, version.version))
    metrics = client.get_run(version.run_id).data.metrics if version.run_id else {}
    tags = dict(version.tags)
    registered_at = _millis(version.creation_timestamp)
    info = ModelInfo(
        name=name,
        version=str(version.version),
        alias=alias,
        run_id=version.run_id,
        metrics=metrics,
        tags=tags,
        registered_at=registered_at,
        # Training moves the alias when it registers a version it promotes; a hand-moved alias has no time.
        promoted_at=registered_at if tags.get("promotion_decision") == "promoted" else None,
        loaded_at=datetime.now(tz=UTC),
    )
    return Champion(model=model, info=info)
