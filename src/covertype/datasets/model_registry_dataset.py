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
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

import covertype.features

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
    """A registered model and its ``champion``/``challenger`` aliases, in the active MLflow run.

    ``load`` gives the champion (an sklearn estimator) or None and the row count the latest version
    was trained on. ``save`` takes ``{"model", "input_example", "decision", "tags"}``: it tags the
    active run with the decision; unless training was skipped it logs the model (sklearn flavor,
    cloudpickle, signature and input example), registers a new version with the ``challenger``
    alias, tags the version, and moves ``champion`` to it when the decision says to promote.
    """

    def __init__(
        self,
        *,
        model_name: str,
        champion_alias: str = "champion",
        challenger_alias: str = "challenger",
        artifact_path: str = "model",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._model_name = model_name
        self._champion_alias = champion_alias
        self._challenger_alias = challenger_alias
        self._artifact_path = artifact_path
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name, "tracking_uri": mlflow.get_tracking_uri()}

    def load(self) -> RegistryState:
        client = mlflow.MlflowClient()
        versions = client.search_model_versions(
            f"name = '{self._model_name}'", order_by=["version_number DESC"], max_results=1
        )
        if not versions:
            return RegistryState(champion=None, champion_version=None, last_trained_rows=None)
        rows = versions[0].tags.get("training_rows")
        try:
            champion = client.get_model_version_by_alias(self._model_name, self._champion_alias)
        except MlflowException:
            return RegistryState(None, None, int(rows) if rows else None)
        model = mlflow.sklearn.load_model(f"models:/{self._model_name}@{self._champion_alias}")
        return RegistryState(model, str(champion.version), int(rows) if rows else None)

    def save(self, data: dict[str, Any]) -> None:
        run = mlflow.active_run()
        if run is None:
            raise DatasetError(f"{self._model_name}: a model is registered from an active MLflow run")
        decision = data["decision"]
        mlflow.set_tags({"promotion_decision": decision["decision"], "promotion_reason": decision["reason"]})
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
                registered_model_name=self._model_name,
            )
        version = str(info.registered_model_version)
        client = mlflow.MlflowClient()
        tags = {
            **data["tags"],
            "promotion_decision": decision["decision"],
            "promotion_reason": decision["reason"],
        }
        for key, value in tags.items():
            client.set_model_version_tag(self._model_name, version, key, value)
        client.set_registered_model_alias(self._model_name, self._challenger_alias, version)
        if decision["promote"]:
            client.set_registered_model_alias(self._model_name, self._champion_alias, version)
        mlflow.set_tag("model_version", version)
