"""The MLflow model registry as a Kedro dataset: load the champion, save a challenger with its aliases."""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mlflow
import pandas as pd
from kedro.io import AbstractDataset, DatasetError
from mlflow.models import infer_signature

from covertype.model_package import CompressedModel
from covertype.registry import Candidate, ModelRegistry

logger = logging.getLogger(__name__)

#: The packages a logged model needs, pinned to this environment's versions. Given explicitly,
#: MLflow skips inferring them, which loads the model in a subprocess and takes ~10 s per model.
MODEL_REQUIREMENTS = ("mlflow", "scikit-learn", "cloudpickle", "pandas", "numpy")
#: The classifiers' packages beyond scikit-learn, by top-level module, as pip names them.
CLASSIFIER_REQUIREMENTS = {"lightgbm": "lightgbm"}


@dataclass(frozen=True)
class RegistryState:
    """What training needs to know about the registry before it starts."""

    champion: Any | None
    champion_version: str | None
    last_trained_rows: int | None
    #: Fingerprint of the training rows and parameters -> the version registered from them.
    fingerprints: dict[str, str] = field(default_factory=dict)


def model_requirements(estimator: Any) -> list[str]:
    """The pinned packages ``estimator`` needs to load: ours, and its classifier's own package."""
    classifier = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    extra = CLASSIFIER_REQUIREMENTS.get(type(classifier).__module__.split(".")[0])
    names = (*MODEL_REQUIREMENTS, *([extra] if extra else []))
    return [f"{name}=={importlib.metadata.version(name)}" for name in names]


def model_logger(package: CompressedModel, example: pd.DataFrame, artifact_path: str) -> Callable[[], str]:
    """Logs ``package`` into the active run (sklearn flavor, compressed cloudpickle, signature and input
    example, pinned requirements): the ``log`` step of a registration, which returns the model id."""

    def log_model() -> str:
        return mlflow.sklearn.log_model(
            package,
            name=artifact_path,
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            signature=infer_signature(example, package.predict(example)),
            input_example=example,
            pip_requirements=model_requirements(package.estimator),
        ).model_id

    return log_model


class ModelRegistryDataset(AbstractDataset[dict[str, Any], RegistryState]):
    """A registered model and its champion/challenger aliases, written from the active MLflow run.

    ``load`` gives the champion (an sklearn estimator) or None, the row count the latest version
    was trained on and the fingerprints already registered. ``save`` takes ``{"model",
    "engine_model", "input_example", "check_records", "decision", "tags", "keep_last"}``: it tags the
    active run with the decision; unless training was skipped ``ModelRegistry.register`` logs the
    model (sklearn flavor, a compressed cloudpickle: ``CompressedModel``, signature and input
    example) with its converted model if it has one (``engine_model``: covertype.serving.engine),
    reads both back (the model's predictions checked on ``check_records``, the converted model
    checked to be the one training's conversion checked), registers a new version with the
    challenger alias, tags it, and moves the champion alias to it when the decision says to promote
    (a failure at any step leaves no version and the run FAILED). Then, with ``keep_last``, it prunes
    the model artifacts of the versions older than the last ``keep_last`` (never the champion's or
    the challenger's).
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
        rows, fingerprints = registry.last_trained_rows(), registry.fingerprints()
        champion = registry.champion()
        if champion is None:
            return RegistryState(None, None, rows, fingerprints)
        return RegistryState(registry.load_model(champion), str(champion.version), rows, fingerprints)

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
        package = model if isinstance(model, CompressedModel) else CompressedModel(model)

        candidate = Candidate(
            run_id=run_id,
            log=model_logger(package, example, self._artifact_path),
            reference=package.estimator,
            check_records=data["check_records"],
            tags={**data["tags"], **decision_tags},
            promote=decision["promote"],
            engine_model=data.get("engine_model"),
        )
        version = registry.register(candidate)
        registry.client.set_tag(run_id, "model_version", str(version.version))
        if data.get("keep_last") is not None:
            pruned = registry.prune_artifacts(data["keep_last"])
            if pruned:
                logger.info("Retention pruned the model artifacts of version(s) %s", ", ".join(pruned))
