"""Whole cycles (`kedro run --env stack`: ingestion + feature engineering + training) on real services:
the batch API, MariaDB, an S3 server (SeaweedFS) and an `mlflow server` backed by both."""

import time
import uuid
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import sqlalchemy as sa

from covertype.data.convert import api_records_to_frame
from covertype.data.schema import FEATURE_COLUMNS
from tests.conftest import kedro_run

pytestmark = pytest.mark.integration

ROTATION_SECONDS = 3.0
SMALL_SEARCH = {"search": {"trials_per_family": 1, "max_rows": 1_000, "cv_folds": 2}}


@pytest.fixture
def stack_env(mysql_url, s3_server, mlflow_server, tmp_path, monkeypatch) -> dict[str, str]:
    """The variables `make stack` would export, pointing at this test's database and bucket."""
    env = {
        **s3_server.env(),
        "MYSQL_HOST": "127.0.0.1",
        "MYSQL_USER": "root",
        "MYSQL_PASSWORD": "",
        "MYSQL_DATABASE": mysql_url.rsplit("/", 1)[1],
        "FEATURES_BUCKET": f"features-{uuid.uuid4().hex[:12]}",
        "MLFLOW_TRACKING_URI": mlflow_server,
        "COVERTYPE_DATA_DIR": str(tmp_path / "data"),
        # The session's MLflow server is shared (the scale-out test registers there too): a model of its own.
        "COVERTYPE_MODEL_NAME": f"covertype_cycle_{uuid.uuid4().hex[:8]}",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    s3_server.filesystem().mkdir(env["FEATURES_BUCKET"])
    return env


def run_stack(params: dict[str, object], pipelines: list[str] | None = None) -> None:
    """`kedro run --env stack [--pipeline ...]`; without pipelines, the default one: a whole cycle."""
    kedro_run("stack", pipelines, params, cwd=Path.cwd())


def test_two_cycles_then_a_skip_in_the_stack_environment(stack_env, start_batch_api, s3_server, mysql_url):
    params = {"batch_api_url": start_batch_api(min_update_seconds=ROTATION_SECONDS), "training": SMALL_SEARCH}
    client = mlflow.MlflowClient(tracking_uri=stack_env["MLFLOW_TRACKING_URI"])
    model = stack_env["COVERTYPE_MODEL_NAME"]
    before = {str(version.version) for version in client.search_model_versions(f"name = '{model}'")}

    run_stack(params)
    time.sleep(ROTATION_SECONDS)  # the next batch is served once the window has passed
    run_stack(params)

    with sa.create_engine(mysql_url).connect() as connection:
        stored = pd.read_sql(
            "SELECT batch_number, COUNT(*) AS n FROM raw_covertype GROUP BY batch_number", connection
        )
    assert dict(zip(stored["batch_number"], stored["n"], strict=True)) == {1: 1_500, 2: 1_500}
    bucket = s3_server.filesystem()
    for table in ("features_train", "features_test"):
        assert bucket.exists(f"{stack_env['FEATURES_BUCKET']}/{table}.parquet")

    versions = {str(v.version): v for v in client.search_model_versions(f"name = '{model}'")}
    new = sorted(set(versions) - before, key=int)
    assert len(new) == 2
    assert [versions[v].tags["training_rows"] for v in new] == ["1500", "3000"]
    assert {versions[v].tags["promotion_decision"] for v in new} <= {"promoted", "rejected"}
    challenger = client.get_model_version_by_alias(model, "challenger")
    assert str(challenger.version) == new[-1]
    run = client.get_run(challenger.run_id)
    assert run.data.tags["promotion_decision"] == challenger.tags["promotion_decision"]
    assert {"test_accuracy", "test_macro_f1", "test_f1_class.7"} <= set(run.data.metrics)
    assert "evaluation/confusion_matrix.png" in {
        a.path for a in client.list_artifacts(run.info.run_id, "evaluation")
    }
    assert any(bucket.find("mlflow-artifacts")), "the server stores the artifacts in S3"

    records = api_records_to_frame(
        [["2596", "51", "3", "258", "0", "510", "221", "232", "148", "6279", "Rawah", "C7745", "5"]]
    ).loc[:, list(FEATURE_COLUMNS)]
    champion = mlflow.sklearn.load_model(f"models:/{model}@champion")
    assert champion.predict(records)[0] in range(1, 8)
    assert champion.predict_proba(records).shape == (1, 7)

    run_stack(params, ["training"])  # no new rows since the last trained version
    skipped = mlflow.search_runs(
        experiment_names=["covertype"], order_by=["start_time DESC"], max_results=1, output_format="list"
    )[0]
    assert skipped.data.tags["promotion_decision"] == "skipped"
    assert len(client.search_model_versions(f"name = '{model}'")) == len(versions)
