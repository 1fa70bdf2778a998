"""The MLflow model registry of the covertype model, through one explicit client.

Training registers versions here, the service and the UI read the champion here, the demo and the
stack ask whether there is one: all of them through ``ModelRegistry``, which holds its own
``MlflowClient`` and changes nothing process-wide (no MLflow globals, no environment variables).
"""

from __future__ import annotations

import gzip
import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repo import ArtifactRepository
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from covertype.config import Settings

logger = logging.getLogger(__name__)

#: The version tag that says how many rows the version was trained on.
TRAINING_ROWS_TAG = "training_rows"
#: The version tag with the bytes its model artifacts take in the artifact store.
MODEL_SIZE_TAG = "model_size_bytes"
#: Where a version's converted model (covertype.serving.engine) sits among its model's artifacts.
ENGINE_ARTIFACT = "engine/model.onnx.gz"
T = TypeVar("T")
#: The first bytes of a gzip stream.
GZIP_MAGIC = b"\x1f\x8b"
#: The version tag set when retention deleted the version's model artifacts (metadata and metrics stay).
ARTIFACTS_PRUNED_TAG = "artifacts_pruned"
#: The version tag with the fingerprint of the training rows and parameters it was trained from.
FINGERPRINT_TAG = "fingerprint"
#: The version tag that says whether its registration ran to the end: ``pending`` until the aliases moved.
REGISTRATION_TAG = "registration"
#: The version tags naming each attachment's artifact URI: ``attachment.<name>``.
ATTACHMENT_TAG_PREFIX = "attachment."
#: The run's folder of attachments: ``attachments/<name>/<file>``.
ATTACHMENTS_FOLDER = "attachments"
#: The run tags a failed registration leaves: the step that failed, and its error.
FAILED_STEP_TAG = "registration_failed_step"
FAILURE_TAG = "registration_error"
#: The run tag set on a RUNNING run whose process is gone, when it is marked FAILED: why it was abandoned.
ABANDONED_TAG = "abandoned"
#: The steps of ``ModelRegistry.register``, in order.
REGISTRATION_STEPS = ("log_model", "attach", "verify", "create_version", "tag_version", "move_aliases")


@dataclass(frozen=True)
class Attachment:
    """A file stored with a version (e.g. a converted model): logged into the run, read back, checked.

    ``check``: called with the downloaded copy; it raises when the copy is not what was meant.
    """

    name: str
    path: Path
    check: Callable[[Path], None] | None = None


def engine_graph(stored: bytes) -> bytes:
    """The converted model's graph, from ``ENGINE_ARTIFACT`` as stored (gzipped) or as an MLflow server
    that proxies artifacts hands it over: it serves the ``.gz`` file with ``Content-Encoding: gzip``,
    which the HTTP client undoes on the way (found running the compose stack)."""
    return gzip.decompress(stored) if stored[:2] == GZIP_MAGIC else stored


@dataclass(frozen=True)
class Candidate:
    """What a registration needs: how to log the model into its run, what it must predict, its tags.

    ``log`` logs the model into run ``run_id`` and returns its MLflow model id; ``reference`` is the
    fitted estimator whose ``predict_proba`` on ``check_records`` the stored model must reproduce.
    ``engine_model``: its converted model as stored (covertype.serving.engine), checked against the
    model when it was converted; stored with the model and read back before the version exists.
    """

    run_id: str
    log: Callable[[], str]
    reference: Any
    check_records: pd.DataFrame
    tags: dict[str, str]
    promote: bool
    attachments: Sequence[Attachment] = ()
    engine_model: bytes | None = None


@dataclass
class _Progress:
    """How far a registration got: what to undo if a step fails."""

    aliases: dict[str, str | None]
    step: str = REGISTRATION_STEPS[0]
    version: ModelVersion | None = field(default=None)


def _short(error: Exception, limit: int = 500) -> str:
    """An error as one tag value (MLflow caps tag values; a traceback belongs in the logs)."""
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


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

    def fingerprints(self) -> dict[str, str]:
        """Fingerprint -> number of every version registered to the end (``registration`` complete).

        A version from before fingerprints has none; one whose registration was cut short counts as none.
        """
        return {
            version.tags[FINGERPRINT_TAG]: str(version.version)
            for version in self.versions()
            if FINGERPRINT_TAG in version.tags and version.tags.get(REGISTRATION_TAG) == "complete"
        }

    def close_abandoned_runs(self, experiment_id: str, abandoned: Callable[[Run], str | None]) -> list[str]:
        """Mark FAILED the RUNNING runs of ``experiment_id`` that ``abandoned`` says no process runs any
        more (it returns why, or None), tagged ``abandoned`` with the reason, and delete the versions
        they left half-registered. The runs closed.

        A process killed mid-run cannot end its run: it stays RUNNING in MLflow until someone does.
        """
        closed = []
        for run in self.client.search_runs([experiment_id], "attributes.status = 'RUNNING'"):
            reason = abandoned(run)
            if reason is None:
                continue
            for version in self.client.search_model_versions(f"run_id = '{run.info.run_id}'"):
                if version.name == self.model_name and version.tags.get(REGISTRATION_TAG) == "pending":
                    self.client.delete_model_version(self.model_name, version.version)
                    logger.warning(
                        "Deleted version %s, half-registered by abandoned run %s",
                        version.version,
                        run.info.run_id,
                    )
            self.client.set_tag(run.info.run_id, ABANDONED_TAG, reason)
            self.client.set_terminated(run.info.run_id, "FAILED")
            logger.warning("Run %s was abandoned (%s): marked FAILED", run.info.run_id, reason)
            closed.append(run.info.run_id)
        for run in self.client.search_runs([experiment_id], "attributes.status = 'RUNNING'"):
            if run.data.tags.get("mlflow.parentRunId") in closed:  # a search trial cut short with it
                self.client.set_tag(run.info.run_id, ABANDONED_TAG, "its parent run was abandoned")
                self.client.set_terminated(run.info.run_id, "FAILED")
        return closed

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
        return self._download_model(self._stored_at(version))

    def _stored_at(self, version: ModelVersion) -> str:
        """Where ``version``'s model artifacts are; ``PrunedVersion`` when retention deleted them."""
        if version.tags.get(ARTIFACTS_PRUNED_TAG) == "true":
            raise PrunedVersion(self, version)
        return self.client.get_model_version_download_uri(self.model_name, version.version)

    def _download(self, artifact_uri: str, read: Callable[[str], T]) -> T:
        """``read`` of the artifact at ``artifact_uri``, downloaded through this client's stores."""
        with tempfile.TemporaryDirectory(prefix="covertype-download-") as folder:
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=artifact_uri,
                dst_path=folder,
                tracking_uri=self.tracking_uri,
                registry_uri=self.registry_uri,
            )
            return read(path)

    def _download_model(self, location: str) -> Any:
        """The estimator stored at ``location``."""
        return self._download(location, mlflow.sklearn.load_model)

    def register(self, candidate: Candidate) -> ModelVersion:
        """A new, verified version of ``candidate``'s model: the new challenger (and champion if it is
        to be promoted).

        The steps (``REGISTRATION_STEPS``), in order: log the model (and its converted model) into the
        candidate's run; log its attachments; download them back through the loading paths the
        service uses and check that the stored model predicts as the fitted one on the check records,
        that the converted model is the one that was checked, and each attachment passes its check;
        create the version; tag it; move the aliases last, then mark the registration complete. A
        failure at any step leaves no new version (the one created is deleted), the aliases where they
        were, and the run FAILED with the step and the error: ``RegistrationFailed`` says which.
        MLflow's SQL registry creates versions READY without looking at their artifacts, hence the
        read-back before the version exists.
        """
        progress = _Progress(aliases=self._alias_targets())
        try:
            progress.step = "log_model"
            model_id = candidate.log()
            if candidate.engine_model is not None:  # a version is created from both, or not at all
                self.log_engine_model(model_id, candidate.engine_model)
            progress.step = "attach"
            locations = {item.name: self._attach(candidate.run_id, item) for item in candidate.attachments}
            progress.step = "verify"
            source = self.client.get_logged_model(model_id).artifact_location
            self._verify(source, candidate)
            progress.step = "create_version"
            self._ensure_registered_model()
            tags = {**candidate.tags, REGISTRATION_TAG: "pending"}
            progress.version = self.client.create_model_version(
                self.model_name, source=source, run_id=candidate.run_id, tags=tags, model_id=model_id
            )
            number = progress.version.version
            progress.step = "tag_version"
            version_tags = {
                MODEL_SIZE_TAG: str(self.artifact_bytes(progress.version)),
                **{f"{ATTACHMENT_TAG_PREFIX}{name}": uri for name, uri in locations.items()},
            }
            for key, value in version_tags.items():
                self.client.set_model_version_tag(self.model_name, number, key, value)
            progress.step = "move_aliases"
            self.client.set_registered_model_alias(self.model_name, self.challenger_alias, number)
            if candidate.promote:
                self.promote(progress.version)
            self.client.set_model_version_tag(self.model_name, number, REGISTRATION_TAG, "complete")
        except Exception as error:
            self._undo(progress, candidate.run_id, error)
            raise RegistrationFailed(self, progress.step, error) from error
        return self.version(number)

    def _ensure_registered_model(self) -> None:
        try:
            self.client.create_registered_model(self.model_name)
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise

    def _alias_targets(self) -> dict[str, str | None]:
        """Where the challenger and champion aliases point before a registration (None: nowhere)."""
        current = {number: aliases for number, aliases in self.aliases().items()}
        behind = {alias: number for number, aliases in current.items() for alias in aliases}
        return {alias: behind.get(alias) for alias in (self.challenger_alias, self.champion_alias)}

    def _attach(self, run_id: str, attachment: Attachment) -> str:
        """Log ``attachment`` into the run under ``attachments/<name>``: its artifact URI."""
        folder = f"{ATTACHMENTS_FOLDER}/{attachment.name}"
        self.client.log_artifact(run_id, str(attachment.path), folder)
        return f"runs:/{run_id}/{folder}/{attachment.path.name}"

    def _verify(self, source: str, candidate: Candidate) -> None:
        """Read the stored model (and attachments) back and check them against what was fitted."""
        stored = self._download_model(source)
        records = candidate.check_records
        expected, found = candidate.reference.predict_proba(records), stored.predict_proba(records)
        if expected.shape != found.shape or not np.allclose(expected, found):
            raise ModelMismatch(
                f"the model read back from {source} does not predict as the fitted one on "
                f"{len(records)} check records"
            )
        if candidate.engine_model is not None:
            read_back = engine_graph(self._download_engine_model(source))
            if read_back != engine_graph(candidate.engine_model):
                raise ModelMismatch(f"the converted model read back from {source} is not the one checked")
        for attachment in candidate.attachments:
            if attachment.check is None:
                continue
            with tempfile.TemporaryDirectory(prefix="covertype-attachment-") as folder:
                path = mlflow.artifacts.download_artifacts(
                    run_id=candidate.run_id,
                    artifact_path=f"{ATTACHMENTS_FOLDER}/{attachment.name}/{attachment.path.name}",
                    dst_path=folder,
                    tracking_uri=self.tracking_uri,
                )
                attachment.check(Path(path))

    def _undo(self, progress: _Progress, run_id: str, error: Exception) -> None:
        """After a failed step: no new version, the aliases back, the run FAILED with step and error.

        Each undo is tried on its own (the store that failed may still be down); what could not be
        undone is logged, for the next run's ``close_abandoned_runs`` and for people.
        """
        undo: list[tuple[str, Callable[[], object]]] = []
        if progress.version is not None:
            number = progress.version.version
            undo.append(
                (
                    f"delete version {number}",
                    partial(self.client.delete_model_version, self.model_name, number),
                )
            )
            undo += [
                (f"restore alias {alias}", partial(self._restore_alias, alias, previous))
                for alias, previous in progress.aliases.items()
            ]
        undo += [
            ("tag the run", partial(self.client.set_tag, run_id, FAILED_STEP_TAG, progress.step)),
            ("tag the run", partial(self.client.set_tag, run_id, FAILURE_TAG, _short(error))),
            ("mark the run FAILED", partial(self.client.set_terminated, run_id, "FAILED")),
        ]
        for what, action in undo:
            try:
                action()
            except Exception as undo_error:  # each undo is independent: all are tried
                logger.error("Registration failed at %s; could not %s: %s", progress.step, what, undo_error)

    def _restore_alias(self, alias: str, previous: str | None) -> None:
        """Point ``alias`` back at ``previous`` (an alias of the deleted version went with it)."""
        if previous is not None:
            self.client.set_registered_model_alias(self.model_name, alias, previous)

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
        return self._download_engine_model(self._stored_at(version))

    def _download_engine_model(self, location: str) -> bytes:
        """The converted model stored with the model at ``location``."""
        engine_artifact = f"{location.rstrip('/')}/{ENGINE_ARTIFACT}"
        return self._download(engine_artifact, lambda path: Path(path).read_bytes())

    # --- end of the converted model ---


class PrunedVersion(LookupError):
    """The version's model artifacts were deleted by retention: only its metadata and metrics remain."""

    def __init__(self, registry: ModelRegistry, version: ModelVersion) -> None:
        super().__init__(
            f"version {version.version} of {registry.model_name} has no model any more: retention pruned "
            f"its artifacts (tag {ARTIFACTS_PRUNED_TAG}); load the champion or a recent version instead"
        )


class ModelMismatch(RuntimeError):
    """The model read back from the artifact store does not predict as the model that was fitted."""


class RegistrationFailed(RuntimeError):
    """A registration stopped at ``step``: no new version was left, the aliases stayed, the run FAILED."""

    def __init__(self, registry: ModelRegistry, step: str, error: Exception) -> None:
        self.step = step
        super().__init__(
            f"registering a new version of {registry.model_name} in {registry.registry_uri} failed at "
            f"step {step!r} ({_short(error)}); no version was left behind and the aliases did not move: "
            "rerun training once the store answers"
        )
