"""The MLflow model registry as a Kedro dataset: load the champion, save a challenger with its aliases."""

from __future__ import annotations

import contextlib
import importlib.metadata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cloudpickle
import mlflow
from kedro.io import AbstractDataset, DatasetError
from mlflow.models import infer_signature

import covertype.features
from covertype.registry import ModelRegistry

#: The packages a logged model needs, pinned to this environment's versions. Given explicitly,
#: MLflow skips inferring them, which loads the model in a subprocess and takes ~10 s per model.
MODEL_REQUIREMENTS = ("mlflow", "scikit-learn", "cloudpickle", "pandas", "numpy")


@dataclass(frozen=True)
class RegistryState:
    """What training needs to know about the registry before it starts."""

    champion: Any | None
    champion_version: str | None
    last_trained_rows: int | None


@contextlib.contextmanager
def _feature_code_by_value() -> Iterator[None]:
    """Pickle the feature transformer's code into the model, not a reference to the module.

    A registered model then keeps computing features the way it was trained, even after
    ``covertype.features`` changes, and loads where the ``covertype`` package is not installed.
    """
    cloudpickle.register_pickle_by_value(covertype.features)
    try:
        yield
    finally:
        cloudpickle.unregister_pickle_by_value(covertype.features)


class ModelRegistryDataset(AbstractDataset[dict[str, Any], RegistryState]):
    """A registered model and its champion/challenger aliases, written from the active MLflow run.

    ``load`` gives the champion (an sklearn estimator) or None and the row count the latest version
    was trained on. ``save`` takes ``{"model", "input_example", "decision", "tags"}``: it tags the
    active run with the decision; unless training was skipped it logs the model (sklearn flavor,
    cloudpickle, signature and input example), registers a new version with the challenger
    alias, tags the version, and moves the champion alias to it when the decision says to promote.
    ``registry`` holds ``ModelRegistry``'s arguments: the store the Kedro environment's kedro-mlflow
    configuration names too, reached through a client of its own, and the model's and aliases' names.
    """

    def __init__(
        self,
        *,
        registry: dict[str, str | None],
        artifact_path: str = "model",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._registry = ModelRegistry(**registry)
        self._artifact_path = artifact_path
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._registry.model_name, "registry_uri": self._registry.registry_uri}

    def load(self) -> RegistryState:
        registry = self._registry
        rows = registry.last_trained_rows()
        champion = registry.champion()
        if champion is None:
            return RegistryState(champion=None, champion_version=None, last_trained_rows=rows)
        return RegistryState(registry.load_model(champion), str(champion.version), rows)

    def save(self, data: dict[str, Any]) -> None:
        registry = self._registry
        # The run kedro-mlflow opened for this session; everything else goes through the registry's client.
        run = mlflow.active_run()
        if run is None:
            raise DatasetError(f"{registry.model_name}: a model is registered from an active MLflow run")
        run_id = run.info.run_id
        decision = data["decision"]
        decision_tags = {"promotion_decision": decision["decision"], "promotion_reason": decision["reason"]}
        for key, value in decision_tags.items():
            registry.client.set_tag(run_id, key, value)
        if decision["decision"] == "skipped":
            return
        model, example = data["model"], data["input_example"]
        with _feature_code_by_value():
            info = mlflow.sklearn.log_model(
                model,
                name=self._artifact_path,
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
                signature=infer_signature(example, model.predict(example)),
                input_example=example,
                pip_requirements=[
                    f"{name}=={importlib.metadata.version(name)}" for name in MODEL_REQUIREMENTS
                ],
            )
        version = registry.register(info.model_id, run_id, {**data["tags"], **decision_tags})
        if decision["promote"]:
            registry.promote(version)
        registry.client.set_tag(run_id, "model_version", str(version.version))
