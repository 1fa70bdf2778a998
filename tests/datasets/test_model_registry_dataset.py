"""The registry dataset and the model contract serving relies on: `models:/covertype@champion`."""

import json
import subprocess
import sys
import textwrap

import cloudpickle
import mlflow
import pandas as pd
import pytest
from lightgbm import LGBMClassifier
from sklearn.ensemble import ExtraTreesClassifier

from covertype.data.convert import api_records_to_frame, one_hot_to_api
from covertype.data.schema import FEATURE_COLUMNS, TARGET_COLUMN
from covertype.data.source import load_covertype
from covertype.datasets.model_registry_dataset import ModelRegistryDataset, model_requirements
from covertype.model_package import feature_code_by_value
from covertype.pipelines.training.nodes import build_model
from covertype.registry import (
    ARTIFACTS_PRUNED_TAG,
    ENGINE_ARTIFACT,
    MODEL_SIZE_TAG,
    ModelRegistry,
    PrunedVersion,
)
from covertype.serving.conversion import to_onnx
from covertype.serving.engine import compress

#: Where ``mlflow.start_run()`` logs in a store without experiments of its own.
DEFAULT_EXPERIMENT_ID = "0"


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch) -> str:
    """An empty local MLflow store (SQLite + artifacts under tmp_path), where ``mlflow.start_run`` logs
    as kedro-mlflow's runs do (the dataset registers from the active run)."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def client(tracking_uri) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


NAMES = {"model_name": "covertype", "champion_alias": "champion", "challenger_alias": "challenger"}


def registry_dataset(tracking_uri: str) -> ModelRegistryDataset:
    """The dataset as conf/base/catalog_training.yml declares it, in the test's store."""
    return ModelRegistryDataset(registry={"tracking_uri": tracking_uri, **NAMES})


@pytest.fixture(scope="module")
def served_rows() -> pd.DataFrame:
    """2,000 rows typed as the batch API dataset types them."""
    return api_records_to_frame(one_hot_to_api(load_covertype("sample")).head(2_000).to_numpy().tolist())


@pytest.fixture(scope="module")
def model(served_rows):
    return build_model(ExtraTreesClassifier(n_estimators=20, random_state=0)).fit(
        served_rows.loc[:, list(FEATURE_COLUMNS)], served_rows[TARGET_COLUMN]
    )


def register(
    tracking_uri: str,
    model,
    served_rows,
    decision: str,
    *,
    keep_last: int | None = None,
    engine_model: bytes | None = None,
    **tags: str,
) -> None:
    with mlflow.start_run():
        mlflow.log_metric("test_macro_f1", 0.5)
        registry_dataset(tracking_uri).save(
            {
                "model": model,
                "engine_model": engine_model,
                "input_example": served_rows.loc[:, list(FEATURE_COLUMNS)].head(5),
                "check_records": served_rows.loc[:, list(FEATURE_COLUMNS)].head(50),
                "decision": {"decision": decision, "promote": decision == "promoted", "reason": "test"},
                "tags": {"training_rows": "2000", **tags},
                "keep_last": keep_last,
            }
        )


def test_an_empty_registry_has_no_champion_and_no_trained_rows(tracking_uri):
    state = registry_dataset(tracking_uri).load()
    assert (state.champion, state.champion_version, state.last_trained_rows) == (None, None, None)


def test_a_promoted_version_takes_both_aliases_and_the_decision_tags(
    tracking_uri, client, model, served_rows
):
    register(tracking_uri, model, served_rows, "promoted")
    version = client.get_model_version_by_alias("covertype", "champion")
    assert (
        str(client.get_model_version_by_alias("covertype", "challenger").version)
        == str(version.version)
        == "1"
    )
    assert version.tags["promotion_decision"] == "promoted" and version.tags["promotion_reason"] == "test"
    run = client.get_run(version.run_id)
    assert run.data.tags["promotion_decision"] == "promoted" and run.data.tags["model_version"] == "1"
    state = registry_dataset(tracking_uri).load()
    assert state.champion_version == "1" and state.last_trained_rows == 2_000
    assert list(state.champion.classes_) == list(range(1, 8))


def test_a_version_carries_its_converted_model_and_counts_it_in_its_size(tracking_uri, model, served_rows):
    stored = compress(to_onnx(model))
    register(tracking_uri, model, served_rows, "promoted")
    register(tracking_uri, model, served_rows, "promoted", engine_model=stored)
    registry = ModelRegistry(tracking_uri, **NAMES)
    without, with_engine = registry.version("1"), registry.version("2")
    assert registry.load_engine_model(with_engine) == stored
    assert int(with_engine.tags[MODEL_SIZE_TAG]) - int(without.tags[MODEL_SIZE_TAG]) == len(stored)
    with pytest.raises(Exception, match=ENGINE_ARTIFACT.rsplit("/", 1)[-1]):
        registry.load_engine_model(without)


def test_a_rejected_version_is_only_the_challenger(tracking_uri, model, served_rows):
    register(tracking_uri, model, served_rows, "promoted")
    register(tracking_uri, model, served_rows, "rejected", training_rows="2600")
    registry = ModelRegistry(tracking_uri, **NAMES)
    assert (str(registry.champion().version), str(registry.challenger().version)) == ("1", "2")
    assert [str(version.version) for version in registry.versions()] == ["2", "1"]
    state = registry_dataset(tracking_uri).load()
    assert (state.champion_version, state.last_trained_rows) == ("1", 2_600)


def test_a_skipped_training_registers_nothing_and_says_so_on_the_run(
    tracking_uri, client, model, served_rows
):
    register(tracking_uri, model, served_rows, "skipped")
    assert client.search_model_versions("name = 'covertype'") == []
    (run,) = client.search_runs([DEFAULT_EXPERIMENT_ID])
    assert run.data.tags["promotion_decision"] == "skipped"


LOAD_IN_A_FRESH_PROCESS = textwrap.dedent(
    """
    import io, json, sys
    sys.modules["covertype"] = None  # the model must carry its feature code: no project package here
    import mlflow, pandas as pd
    frame = pd.read_json(io.StringIO(sys.argv[1]), orient="split")
    records = frame.astype({c: "Int64" for c in frame.columns[:10]}).astype(
        {"Wilderness_Area": "string", "Soil_Type": "string"})
    estimator = mlflow.sklearn.load_model("models:/covertype@champion")
    pyfunc = mlflow.pyfunc.load_model("models:/covertype@champion")
    print(json.dumps({
        "first_step": type(estimator.steps[0][1]).__name__,
        "classes": estimator.classes_.tolist(),
        "predict": estimator.predict(records).tolist(),
        "proba_rows": estimator.predict_proba(records).sum(axis=1).round(6).tolist(),
        "pyfunc": pyfunc.predict(records).tolist(),
        "requirements": open(mlflow.artifacts.download_artifacts("models:/covertype@champion")
                             + "/requirements.txt").read().split(),
        "model_file_bytes": len(open(mlflow.artifacts.download_artifacts("models:/covertype@champion")
                                     + "/model.pkl", "rb").read()),
    }))
    """
)


def test_the_compressed_champion_loads_and_predicts_in_a_fresh_process_without_the_project(
    tracking_uri, client, model, served_rows, tmp_path
):
    register(tracking_uri, model, served_rows, "promoted")
    records = served_rows.loc[:, list(FEATURE_COLUMNS)].tail(20)
    result = subprocess.run(
        [sys.executable, "-c", LOAD_IN_A_FRESH_PROCESS, records.to_json(orient="split", index=False)],
        capture_output=True,
        text=True,
        env={"MLFLOW_TRACKING_URI": tracking_uri, "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["first_step"] == "CovertypeFeatures"
    assert loaded["classes"] == list(range(1, 8))
    assert loaded["predict"] == model.predict(records).tolist() == loaded["pyfunc"]
    assert loaded["proba_rows"] == [1.0] * len(records)
    assert any(line.startswith("scikit-learn==") for line in loaded["requirements"])
    assert any(line.startswith("cloudpickle==") for line in loaded["requirements"])
    assert not any(line.startswith("lightgbm==") for line in loaded["requirements"])
    # Stored compressed (a fifth of the plain pickle or less), and the version says what it takes.
    with feature_code_by_value():
        plain = len(cloudpickle.dumps(model))
    assert loaded["model_file_bytes"] < plain / 4
    stored = int(client.get_model_version("covertype", "1").tags[MODEL_SIZE_TAG])
    assert loaded["model_file_bytes"] < stored < loaded["model_file_bytes"] + 50_000


def test_a_lightgbm_model_requires_lightgbm(served_rows):
    booster = build_model(LGBMClassifier(n_estimators=2, verbose=-1)).fit(
        served_rows.loc[:, list(FEATURE_COLUMNS)], served_rows[TARGET_COLUMN]
    )
    assert any(line.startswith("lightgbm==") for line in model_requirements(booster))


def test_retention_prunes_old_artifacts_but_keeps_the_champion_the_challenger_and_the_last_k(
    tracking_uri, client, model, served_rows
):
    register(tracking_uri, model, served_rows, "promoted", keep_last=2)  # 1: the champion
    for _ in range(5):  # 2..6, 6 the challenger
        register(tracking_uri, model, served_rows, "rejected", keep_last=2)
    registry = ModelRegistry(tracking_uri, **NAMES)
    pruned = {str(v.version) for v in registry.versions() if v.tags.get(ARTIFACTS_PRUNED_TAG) == "true"}
    assert pruned == {"2", "3", "4"}
    for version in registry.versions():
        kept = str(version.version) not in pruned
        assert (registry.artifact_bytes(version) > 0) is kept
        # Every version keeps its metadata, tags and run metrics.
        assert version.tags["training_rows"] == "2000" and int(version.tags[MODEL_SIZE_TAG]) > 0
        assert client.get_run(version.run_id).data.metrics["test_macro_f1"] == 0.5
    with pytest.raises(PrunedVersion, match="retention pruned"):
        registry.load_model(registry.version("3"))
    assert list(registry.load_model(registry.champion()).classes_) == list(range(1, 8))
    assert registry.prune_artifacts(keep_last=2) == []  # nothing more to prune
