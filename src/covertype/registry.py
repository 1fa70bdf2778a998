"""The MLflow model registry of the covertype model, through one explicit client.

Training registers versions here, the service and the UI read the champion here, the demo and the
stack ask whether there is one: all of them through ``ModelRegistry``, which holds its own
``MlflowClient`` and changes nothing process-wide (no MLflow globals, no environment variables).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repo import ArtifactRepository
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from covertype.config import Settings

#: The version tag that says how many rows the version was trained on.
TRAINING_ROWS_TAG = "training_rows"
#: The version tag with the bytes its model artifacts take in the artifact store.
MODEL_SIZE_TAG = "model_size_bytes"
#: Where a version's converted model (covertype.serving.engine) sits among its model's artifacts.
ENGINE_ARTIFACT = "engine/model.onnx.gz"
#: The version tag set when retention deleted the version's model artifacts (metadata and metrics stay).
ARTIFACTS_PRUNED_TAG = "artifacts_pruned"


def _is_missing(error: Exception) -> bool:
    """The registry answered that the model (or the version asked for) does not exist (yet)."""
    return isinstance(error, MlflowException) and error.error_code == "RESOURCE_DOES_NOT_EXIST"


class UnknownVersion(LookupError):
    """No registered version answers to a selector: an alias nobody set, or a number never registered."""

    def __init__(self, registry: ModelRegistry, selector: str) -> None:
        self.selector = selector
        kind = "version" if selector.isdigit() else "alias"
        super().__init__(
            f"model '{selector}': {registry.model_name} has no {kind} {selector!r} in {registry.registry_uri}"
        )


class ModelRegistry:
    """One registered model and its champion and challenger aliases, in one registry."""

    def __init__(
        self,
        tracking_uri: str,
        registry_uri: str | None = None,
        *,
        model_name: str,
        champion_alias: str,
        challenger_alias: str,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri  # MLflow's rule: the tracking store by default
        self.client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
        self.model_name = model_name
        self.champion_alias = champion_alias
        self.challenger_alias = challenger_alias

    @classmethod
    def from_settings(
        cls, settings: Settings, tracking_uri: str | None = None, registry_uri: str | None = None
    ) -> ModelRegistry:
        """The settings' model in their store, or in the one given (a Kedro environment's own, say)."""
        if tracking_uri is None:
            tracking_uri, registry_uri = settings.tracking_uri, settings.registry_uri
        return cls(
            tracking_uri,
            registry_uri,
            model_name=settings.model_name,
            champion_alias=settings.champion_alias,
            challenger_alias=settings.challenger_alias,
        )

    def describe(self, alias: str) -> str:
        """``<model>@<alias>``, as people and logs name a version behind an alias."""
        return f"{self.model_name}@{alias}"

    def _behind(self, alias: str) -> ModelVersion | None:
        try:
            model = self.client.get_registered_model(self.model_name)
        except MlflowException as error:
            if _is_missing(error):
                return None
            raise
        number = model.aliases.get(alias)
        return None if number is None else self.version(str(number))

    def champion(self) -> ModelVersion | None:
        """The version the champion alias points at now, or None before training promoted one."""
        return self._behind(self.champion_alias)

    def challenger(self) -> ModelVersion | None:
        """The version training registered last, or None before it registered one."""
        return self._behind(self.challenger_alias)

    def version(self, number: str) -> ModelVersion:
        return self.client.get_model_version(self.model_name, number)

    def resolve(self, selector: str | None = None) -> ModelVersion:
        """The version ``selector`` names now: digits are a version number, anything else an alias;
        None is the champion. Its ``aliases`` are the ones pointing at it now.

        Raises ``UnknownVersion`` naming the selector when no version answers to it.
        """
        selector = selector or self.champion_alias
        try:
            if selector.isdigit():
                return self.version(selector)
            return self.client.get_model_version_by_alias(self.model_name, selector)
        except MlflowException as error:
            # A missing model or version is "does not exist"; an alias nobody set is an "invalid" one.
            if _is_missing(error) or error.error_code == "INVALID_PARAMETER_VALUE":
                raise UnknownVersion(self, selector) from error
            raise

    def aliases(self) -> dict[str, list[str]]:
        """Version number -> the aliases pointing at it, for every version that has one."""
        try:
            model = self.client.get_registered_model(self.model_name)
        except MlflowException as error:
            if _is_missing(error):
                return {}
            raise
        by_version: dict[str, list[str]] = {}
        for alias, number in sorted(model.aliases.items()):
            by_version.setdefault(str(number), []).append(alias)
        return by_version

    def run_metrics(self, version: ModelVersion) -> dict[str, float]:
        """The metrics of the training run that registered ``version`` (none without a run)."""
        return self.client.get_run(version.run_id).data.metrics if version.run_id else {}

    def versions(self) -> list[ModelVersion]:
        """Every registered version, newest first (a search does not return aliases)."""
        return self.client.search_model_versions(
            f"name = '{self.model_name}'", order_by=["version_number DESC"]
        )

    def last_trained_rows(self) -> int | None:
        """The rows the newest version was trained on; None before any version (or without the tag)."""
        newest = self.client.search_model_versions(
            f"name = '{self.model_name}'", order_by=["version_number DESC"], max_results=1
        )
        rows = newest[0].tags.get(TRAINING_ROWS_TAG) if newest else None
        return int(rows) if rows else None

    def _artifacts(self, version: ModelVersion) -> ArtifactRepository:
        """The artifact repository of ``version``'s model (a local folder, S3, the MLflow server's proxy)."""
        location = self.client.get_model_version_download_uri(self.model_name, version.version)
        return get_artifact_repository(
            location, tracking_uri=self.tracking_uri, registry_uri=self.registry_uri
        )

    def artifact_bytes(self, version: ModelVersion) -> int:
        """The bytes ``version``'s model artifacts take in the artifact store (every file, recursively)."""
        repository, folders, total = self._artifacts(version), [None], 0
        while folders:
            for entry in repository.list_artifacts(folders.pop()):
                if entry.is_dir:
                    folders.append(entry.path)
                else:
                    total += entry.file_size or 0
        return total

    def prune_artifacts(self, keep_last: int) -> list[str]:
        """Delete the model artifacts of every version but the champion, the challenger and the last
        ``keep_last``; the pruned versions keep their metadata, tags and run metrics, and are tagged
        ``artifacts_pruned`` so that nothing tries to load them. The versions pruned now, oldest first.
        """
        keep = {str(version.version) for version in (self.champion(), self.challenger()) if version}
        pruned = []
        for position, version in enumerate(self.versions()):
            number = str(version.version)
            if position < keep_last or number in keep or version.tags.get(ARTIFACTS_PRUNED_TAG) == "true":
                continue
            self._artifacts(version).delete_artifacts()
            self.client.set_model_version_tag(self.model_name, number, ARTIFACTS_PRUNED_TAG, "true")
            pruned.append(number)
        return pruned[::-1]

    def load_model(self, version: ModelVersion) -> Any:
        """The estimator of ``version``, its own artifacts (not the alias, which may move meanwhile).

        Downloaded from the version's storage location through this client's stores: MLflow would
        resolve a ``models:/`` URI through the process-wide registry instead. A version whose
        artifacts retention pruned is refused with ``PrunedVersion``.
        """
        if version.tags.get(ARTIFACTS_PRUNED_TAG) == "true":
            raise PrunedVersion(self, version)
        location = self.client.get_model_version_download_uri(self.model_name, version.version)
        with tempfile.TemporaryDirectory(prefix="covertype-model-") as folder:
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=location,
                dst_path=folder,
                tracking_uri=self.tracking_uri,
                registry_uri=self.registry_uri,
            )
            return mlflow.sklearn.load_model(path)

    def register(self, model_id: str, run_id: str, tags: dict[str, str]) -> ModelVersion:
        """A new version of the model ``run_id`` logged as ``model_id``, tagged: the new challenger.

        The version's source is the logged model's artifact location, found through this client: given
        a ``models:/<model_id>`` source, MLflow's SQL registry would look the model up in the
        process-wide tracking store instead.
        """
        try:
            self.client.create_registered_model(self.model_name)
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        source = self.client.get_logged_model(model_id).artifact_location
        version = self.client.create_model_version(
            self.model_name, source=source, run_id=run_id, tags=tags, model_id=model_id
        )
        self.client.set_registered_model_alias(self.model_name, self.challenger_alias, version.version)
        return version

    def promote(self, version: ModelVersion) -> None:
        """Point the champion alias at ``version``."""
        self.client.set_registered_model_alias(self.model_name, self.champion_alias, version.version)

    # --- the converted model (issue 26): stored inside the logged model, so the version carries it ---
    def log_engine_model(self, model_id: str, stored: bytes) -> None:
        """Store a converted model (``ENGINE_ARTIFACT``) with the logged model ``model_id``, before it is
        registered: the version's artifacts are the logged model's, so the version carries it too."""
        folder, name = ENGINE_ARTIFACT.rsplit("/", 1)
        with tempfile.TemporaryDirectory(prefix="covertype-engine-") as local:
            (Path(local) / name).write_bytes(stored)
            self.client.log_model_artifacts(model_id, local, artifact_path=folder)

    def load_engine_model(self, version: ModelVersion) -> bytes:
        """The converted model ``version`` carries, as stored; ``PrunedVersion`` when retention deleted it."""
        if version.tags.get(ARTIFACTS_PRUNED_TAG) == "true":
            raise PrunedVersion(self, version)
        location = self.client.get_model_version_download_uri(self.model_name, version.version)
        with tempfile.TemporaryDirectory(prefix="covertype-engine-") as folder:
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=f"{location.rstrip('/')}/{ENGINE_ARTIFACT}",
                dst_path=folder,
                tracking_uri=self.tracking_uri,
                registry_uri=self.registry_uri,
            )
            return Path(path).read_bytes()

    # --- end of the converted model ---


class PrunedVersion(LookupError):
    """The version's model artifacts were deleted by retention: only its metadata and metrics remain."""

    def __init__(self, registry: ModelRegistry, version: ModelVersion) -> None:
        super().__init__(
            f"version {version.version} of {registry.model_name} has no model any more: retention pruned "
            f"its artifacts (tag {ARTIFACTS_PRUNED_TAG}); load the champion or a recent version instead"
        )
