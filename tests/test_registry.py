"""Registration leaves a complete, verified version or nothing: the steps, the undo, the abandoned runs."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from sklearn.ensemble import ExtraTreesClassifier

from covertype.data.convert import api_records_to_frame, one_hot_to_api
from covertype.data.schema import FEATURE_COLUMNS, TARGET_COLUMN
from covertype.data.source import load_covertype
from covertype.datasets.model_registry_dataset import model_logger
from covertype.model_package import CompressedModel
from covertype.pipelines.training.nodes import build_model
from covertype.registry import (
    ABANDONED_TAG,
    FAILED_STEP_TAG,
    FAILURE_TAG,
    FINGERPRINT_TAG,
    MODEL_SIZE_TAG,
    REGISTRATION_TAG,
    Attachment,
    Candidate,
    ModelRegistry,
    RegistrationFailed,
)
from covertype.serving.engine import compress

NAMES = {"model_name": "covertype", "champion_alias": "champion", "challenger_alias": "challenger"}


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch) -> str:
    """An empty local MLflow store; ``mlflow.start_run`` logs there, as kedro-mlflow's runs do."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    # An earlier in-process Kedro session (kedro-mlflow) may have set MLflow's process-wide URI and
    # active experiment: this store's own, for this test.
    monkeypatch.setattr("mlflow.tracking._tracking_service.utils._tracking_uri", None)
    experiment = mlflow.MlflowClient(uri).create_experiment("registry")
    monkeypatch.setattr("mlflow.tracking.fluent._active_experiment_id", experiment)
    return uri


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return api_records_to_frame(one_hot_to_api(load_covertype("sample")).head(1_500).to_numpy().tolist())


def fitted(rows: pd.DataFrame, seed: int):
    """A small forest fitted on the first 1,000 rows (it predicts those perfectly whatever its seed)."""
    training = rows.head(1_000)
    return build_model(ExtraTreesClassifier(n_estimators=5, random_state=seed)).fit(
        training.loc[:, list(FEATURE_COLUMNS)], training[TARGET_COLUMN]
    )


@pytest.fixture(scope="module")
def models(rows):
    """Two different fitted models: what was fitted, and what a broken store could hand back instead."""
    return fitted(rows, 0), fitted(rows, 1)


def logger_of(model, rows):
    """A ``Candidate.log`` that logs ``model`` into the active run, as the registry dataset does."""
    return model_logger(CompressedModel(model), rows.loc[:, list(FEATURE_COLUMNS)].head(5), "model")


def candidate(
    run_id, model, rows, *, stored=None, promote=True, fingerprint="f1", attachments=(), engine_model=None
):
    return Candidate(
        run_id=run_id,
        log=logger_of(model if stored is None else stored, rows),
        reference=model,
        check_records=rows.loc[:, list(FEATURE_COLUMNS)].tail(100),  # never seen in training
        tags={FINGERPRINT_TAG: fingerprint},
        promote=promote,
        attachments=attachments,
        engine_model=engine_model,
    )


def test_a_registration_stores_a_verified_version_then_moves_both_aliases(tracking_uri, models, rows):
    registry = ModelRegistry(tracking_uri, **NAMES)
    with mlflow.start_run() as run:
        version = registry.register(candidate(run.info.run_id, models[0], rows))
    assert registry.aliases() == {"1": ["challenger", "champion"]}
    assert version.tags[REGISTRATION_TAG] == "complete" and int(version.tags[MODEL_SIZE_TAG]) > 0
    assert registry.fingerprints() == {"f1": "1"}
    stored = registry.load_model(version)
    records = rows.loc[:, list(FEATURE_COLUMNS)].tail(50)
    assert (stored.predict(records) == models[0].predict(records)).all()


def assert_nothing_left(registry: ModelRegistry, run_id: str, step: str, aliases: dict) -> None:
    """No new version, the aliases where they were, the run FAILED with the step and the error (by the
    registration itself: the run is still the active one)."""
    assert registry.aliases() == aliases
    assert [str(v.version) for v in registry.versions()] == sorted(
        {number for number in aliases}, key=int, reverse=True
    )
    run = registry.client.get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags[FAILED_STEP_TAG] == step and run.data.tags[FAILURE_TAG]


def test_a_model_that_reads_back_differently_leaves_no_version_and_the_aliases_in_place(
    tracking_uri, models, rows
):
    registry = ModelRegistry(tracking_uri, **NAMES)
    with mlflow.start_run() as run:
        registry.register(candidate(run.info.run_id, models[0], rows))
    with mlflow.start_run() as run:  # the run stays active, as kedro-mlflow's does
        with pytest.raises(RegistrationFailed, match="failed at step 'verify'"):
            registry.register(candidate(run.info.run_id, models[0], rows, stored=models[1], fingerprint="f2"))
        assert_nothing_left(registry, run.info.run_id, "verify", {"1": ["challenger", "champion"]})
    assert registry.fingerprints() == {"f1": "1"}


def test_the_converted_model_is_stored_with_the_version_and_read_back_before_it_exists(
    tracking_uri, models, rows
):
    registry = ModelRegistry(tracking_uri, **NAMES)
    converted = compress(b"the graph the conversion checked")
    with mlflow.start_run() as run:
        version = registry.register(candidate(run.info.run_id, models[0], rows, engine_model=converted))
    assert registry.load_engine_model(version) == converted


def test_a_converted_model_that_reads_back_differently_leaves_no_version(
    tracking_uri, models, rows, monkeypatch
):
    registry = ModelRegistry(tracking_uri, **NAMES)
    with mlflow.start_run() as run:
        registry.register(candidate(run.info.run_id, models[0], rows))
    # An upload that stores other bytes than it was given (the store, not the conversion, is at fault).
    store = registry.log_engine_model
    other = compress(b"another graph")
    monkeypatch.setattr(registry, "log_engine_model", lambda model_id, stored: store(model_id, other))
    converted = compress(b"the graph the conversion checked")
    with mlflow.start_run() as run:
        with pytest.raises(RegistrationFailed, match=r"failed at step 'verify'.*converted model"):
            registry.register(
                candidate(run.info.run_id, models[0], rows, fingerprint="f2", engine_model=converted)
            )
        assert_nothing_left(registry, run.info.run_id, "verify", {"1": ["challenger", "champion"]})


def test_an_attachment_that_fails_its_check_leaves_no_version(tracking_uri, models, rows, tmp_path):
    registry = ModelRegistry(tracking_uri, **NAMES)
    converted = tmp_path / "model.onnx"
    converted.write_bytes(b"not what was meant")

    def must_be_onnx(path):
        if path.read_bytes() != b"onnx":
            raise ValueError(f"{path.name} is not the converted model")

    attachment = Attachment("onnx", converted, check=must_be_onnx)
    with mlflow.start_run() as run:  # the run stays active, as kedro-mlflow's does
        with pytest.raises(RegistrationFailed, match=r"'verify'.*not the converted"):
            registry.register(candidate(run.info.run_id, models[0], rows, attachments=[attachment]))
        assert_nothing_left(registry, run.info.run_id, "verify", {})


def test_an_attachment_is_stored_with_the_version_and_read_back(tracking_uri, models, rows, tmp_path):
    registry = ModelRegistry(tracking_uri, **NAMES)
    converted = tmp_path / "model.onnx"
    converted.write_bytes(b"onnx")
    checked = []
    attachment = Attachment("onnx", converted, check=lambda path: checked.append(path.read_bytes()))
    with mlflow.start_run() as run:
        version = registry.register(candidate(run.info.run_id, models[0], rows, attachments=[attachment]))
    assert checked == [b"onnx"]
    uri = version.tags["attachment.onnx"]
    assert uri == f"runs:/{run.info.run_id}/attachments/onnx/model.onnx"
    assert open(mlflow.artifacts.download_artifacts(uri), "rb").read() == b"onnx"  # noqa: SIM115


def test_an_alias_that_cannot_move_deletes_the_version_and_puts_the_challenger_back(
    tracking_uri, models, rows
):
    """The champion alias moves after the challenger's: when it cannot, both end where they were."""
    registry = ModelRegistry(tracking_uri, **NAMES)
    with mlflow.start_run() as run:
        registry.register(candidate(run.info.run_id, models[0], rows, promote=False))
    # MLflow refuses a version-like alias such as "v1": the champion's move fails after the challenger's.
    refused = ModelRegistry(tracking_uri, **{**NAMES, "champion_alias": "v1"})
    with mlflow.start_run() as run:  # the run stays active, as kedro-mlflow's does
        with pytest.raises(RegistrationFailed, match="'move_aliases'"):
            refused.register(candidate(run.info.run_id, models[0], rows, fingerprint="f2"))
        assert_nothing_left(registry, run.info.run_id, "move_aliases", {"1": ["challenger"]})


def test_a_failure_while_logging_the_model_marks_the_run_failed_with_the_step(tracking_uri, models, rows):
    registry = ModelRegistry(tracking_uri, **NAMES)

    def unreachable_store() -> str:
        raise ConnectionError("artifact store unreachable")

    with mlflow.start_run() as run:  # the run stays active, as kedro-mlflow's does
        with pytest.raises(RegistrationFailed, match=r"'log_model'.*unreachable"):
            registry.register(
                Candidate(run.info.run_id, unreachable_store, models[0], rows.head(5), {}, promote=True)
            )
        assert_nothing_left(registry, run.info.run_id, "log_model", {})


def test_abandoned_runs_are_marked_failed_and_their_half_registered_versions_deleted(
    tracking_uri, models, rows
):
    registry = ModelRegistry(tracking_uri, **NAMES)
    client = registry.client
    experiment = client.get_experiment_by_name("registry").experiment_id
    dead, alive = (client.create_run(experiment).info.run_id for _ in range(2))
    with mlflow.start_run(run_id=dead):
        model_id = logger_of(models[0], rows)()
    client.update_run(dead, status="RUNNING")  # as a process killed mid-registration leaves it
    source = client.get_logged_model(model_id).artifact_location
    client.create_registered_model("covertype")
    client.create_model_version("covertype", source, run_id=dead, tags={REGISTRATION_TAG: "pending"})

    closed = registry.close_abandoned_runs(
        experiment, lambda run: "gone" if run.info.run_id == dead else None
    )
    assert closed == [dead]
    assert client.get_run(dead).info.status == "FAILED"
    assert client.get_run(dead).data.tags[ABANDONED_TAG] == "gone"
    assert client.get_run(alive).info.status == "RUNNING"
    assert registry.versions() == []
