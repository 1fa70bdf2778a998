"""`kedro run --pipeline feature_engineering` then `training`, default environment: SQLite + local MLflow."""

import mlflow
import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from covertype.data.convert import api_records_to_frame
from covertype.datasets import SQLAppendDataset
from covertype.pipelines.ingestion.nodes import flag_invalid_rows, select_valid_rows
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.integration

#: A small search so that one run takes seconds; the search itself is covered by test_nodes.
SMALL_SEARCH = {"search": {"trials_per_family": 1, "max_rows": 1_000, "cv_folds": 2}}


@pytest.fixture
def project(tmp_path, monkeypatch) -> str:
    """Empty raw store, feature folder and MLflow store under tmp_path; returns the raw store URL."""
    raw_store = f"sqlite:///{tmp_path}/raw.db"
    monkeypatch.setenv("COVERTYPE_RAW_STORE_URL", raw_store)
    monkeypatch.setenv("COVERTYPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.chdir(tmp_path)  # the local MLflow store puts artifacts in ./mlruns
    yield raw_store
    mlflow.set_tracking_uri(None)


def store_batch(raw_store: str, rows: list[list[str]], batch_number: int) -> None:
    """What ingestion appends for one batch."""
    batch = api_records_to_frame(rows).assign(
        group_number=1, batch_number=batch_number, collected_at=pd.Timestamp.now(tz="UTC")
    )
    SQLAppendDataset(table_name="raw_covertype", credentials={"con": raw_store}).save(
        select_valid_rows(flag_invalid_rows(batch))
    )


def run(pipelines: list[str], **training: object) -> None:
    """One Kedro session, as `kedro run --pipeline ... --params training...` would run it."""
    bootstrap_project(PROJECT_ROOT)
    with KedroSession.create(
        project_path=PROJECT_ROOT, env="local", runtime_params={"training": {**SMALL_SEARCH, **training}}
    ) as session:
        session.run(pipeline_names=pipelines)


def latest_run() -> mlflow.entities.Run:
    return mlflow.search_runs(
        experiment_names=["covertype"],
        filter_string="tags.promotion_decision != ''",
        order_by=["start_time DESC"],
        max_results=1,
        output_format="list",
    )[0]


def test_cycles_register_a_champion_then_skip_then_keep_it_against_a_weaker_challenger(project, api_rows):
    store_batch(project, api_rows[:1_500], 1)
    store_batch(project, api_rows[1_000:3_000], 2)  # 500 rows served again: counted once
    run(["feature_engineering", "training"])

    client = mlflow.MlflowClient()
    champion = client.get_model_version_by_alias("covertype", "champion")
    assert str(champion.version) == "1" and champion.tags["promotion_decision"] == "promoted"
    assert champion.tags["training_rows"] == "3000"
    first = latest_run()
    challenger_metrics = {
        name: value for name, value in first.data.metrics.items() if name.startswith("test_")
    }
    assert {"test_accuracy", "test_macro_f1", "test_roc_auc_ovr", "test_f1_class.1"} <= set(
        challenger_metrics
    )
    assert first.data.metrics["test_accuracy"] > 0.6
    # Promoted: the model that serves after the run is the challenger.
    assert {f"champion.{name}": value for name, value in challenger_metrics.items()} == {
        name: value for name, value in first.data.metrics.items() if name.startswith("champion.")
    }
    artifacts = {artifact.path for artifact in client.list_artifacts(first.info.run_id, "evaluation")}
    assert artifacts == {"evaluation/confusion_matrix.png", "evaluation/feature_importances.csv"}
    trials = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{first.info.run_id}'", output_format="list"
    )
    assert len(trials) == 3

    run(["feature_engineering", "training"])  # no new rows
    skipped = latest_run()
    assert skipped.data.tags["promotion_decision"] == "skipped"
    assert skipped.data.tags["promotion_reason"].startswith("training skipped: 0 new rows")
    assert len(client.search_model_versions("name = 'covertype'")) == 1
    # Only the served champion's scores on this run's split: no search, no challenger metric.
    assert not [name for name in skipped.data.metrics if not name.startswith("champion.test_")]
    assert skipped.data.metrics["champion.test_macro_f1"] == first.data.metrics["champion.test_macro_f1"]
    no_trials = f"tags.mlflow.parentRunId = '{skipped.info.run_id}'"
    assert mlflow.search_runs(filter_string=no_trials, output_format="list") == []

    store_batch(project, api_rows[3_000:4_500], 3)
    run(["feature_engineering", "training"], promotion={"min_improvement": 1.0})
    third = latest_run()
    assert third.data.tags["promotion_decision"] == "rejected"
    champion_score = third.data.metrics["champion.test_macro_f1"]
    assert f"vs champion {champion_score:.4f}" in third.data.tags["promotion_reason"]
    assert f"test_macro_f1 {third.data.metrics['test_macro_f1']:.4f}" in third.data.tags["promotion_reason"]
    assert str(client.get_model_version_by_alias("covertype", "challenger").version) == "2"
    assert str(client.get_model_version_by_alias("covertype", "champion").version) == "1"
