"""`kedro run --pipeline feature_engineering` then `training`, default environment: SQLite + local MLflow."""

from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from covertype.data.convert import api_records_to_frame
from covertype.datasets import SQLAppendDataset
from covertype.model_package import MEGABYTE
from covertype.paths import PROJECT_ROOT
from covertype.pipelines.ingestion.nodes import flag_invalid_rows, select_valid_rows
from tests.conftest import kedro_run

pytestmark = pytest.mark.integration

#: A small search so that one run takes seconds; the search itself is covered by test_nodes.
SMALL_SEARCH = {"search": {"trials_per_family": 1, "max_rows": 1_000, "cv_folds": 2}}


def searched_families() -> list[str]:
    """The families the project's base parameters search."""
    parameters = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_training.yml").read_text())
    return list(parameters["training"]["search"]["spaces"])


def environment(project: Path) -> dict[str, str]:
    """Empty raw store, feature folder and MLflow store under the project folder (the runs' working
    folder, where the local MLflow store puts its artifacts)."""
    return {
        "COVERTYPE_RAW_STORE_URL": raw_store(project),
        "COVERTYPE_DATA_DIR": str(project / "data"),
        "MLFLOW_TRACKING_URI": tracking_uri(project),
    }


def raw_store(project: Path) -> str:
    return f"sqlite:///{project}/raw.db"


def tracking_uri(project: Path) -> str:
    return f"sqlite:///{project}/mlflow.db"


def store_batch(project: Path, rows: list[list[str]], batch_number: int) -> None:
    """What ingestion appends for one batch."""
    batch = api_records_to_frame(rows).assign(
        group_number=1, batch_number=batch_number, collected_at=pd.Timestamp.now(tz="UTC")
    )
    SQLAppendDataset(table_name="raw_covertype", credentials={"con": raw_store(project)}).save(
        select_valid_rows(flag_invalid_rows(batch))
    )


def run(project: Path, pipelines: list[str], **training: object) -> None:
    """`kedro run --pipelines ... --params training...` in the project's folder and stores."""
    params = {"training": {**SMALL_SEARCH, **training}}
    kedro_run("local", pipelines, params, environ=environment(project), cwd=project)


def latest_run(client: mlflow.MlflowClient) -> mlflow.entities.Run:
    return client.search_runs(
        [client.get_experiment_by_name("covertype").experiment_id],
        filter_string="tags.promotion_decision != ''",
        order_by=["start_time DESC"],
        max_results=1,
    )[0]


def test_cycles_register_a_champion_then_skip_then_keep_it_against_an_oversized_challenger(
    tmp_path, api_rows
):
    project = tmp_path
    store_batch(project, api_rows[:1_500], 1)
    store_batch(project, api_rows[1_000:3_000], 2)  # 500 rows served again: counted once
    run(project, ["feature_engineering", "training"])

    client = mlflow.MlflowClient(tracking_uri=tracking_uri(project))
    champion = client.get_model_version_by_alias("covertype", "champion")
    assert str(champion.version) == "1" and champion.tags["promotion_decision"] == "promoted"
    assert champion.tags["training_rows"] == "3000"
    first = latest_run(client)
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
    trials = client.search_runs(
        [first.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{first.info.run_id}'"
    )
    assert sorted(trial.data.tags["family"] for trial in trials) == sorted(searched_families())  # one each
    assert 0 < int(champion.tags["model_size_bytes"]) < 25 * MEGABYTE

    run(project, ["feature_engineering", "training"])  # no new rows: a rerun registers nothing twice
    skipped = latest_run(client)
    assert skipped.data.tags["promotion_decision"] == "skipped"
    reason = "training skipped: version 1 was registered from these rows and parameters already"
    assert skipped.data.tags["promotion_reason"] == reason
    assert len(client.search_model_versions("name = 'covertype'")) == 1
    # Only the served champion's scores on this run's split: no search, no challenger metric.
    assert not [name for name in skipped.data.metrics if not name.startswith("champion.test_")]
    assert skipped.data.metrics["champion.test_macro_f1"] == first.data.metrics["champion.test_macro_f1"]
    no_trials = f"tags.mlflow.parentRunId = '{skipped.info.run_id}'"
    assert client.search_runs([skipped.info.experiment_id], filter_string=no_trials) == []

    store_batch(project, api_rows[3_000:4_500], 3)
    # Over the size budget: never promoted, whatever its scores (the champion's is far below 1.0).
    run(project, ["feature_engineering", "training"], model_size_budget_mb=0.01)
    third = latest_run(client)
    assert third.data.tags["promotion_decision"] == "rejected"
    assert "MB stored, over the 0.01 MB budget" in third.data.tags["promotion_reason"]
    assert third.data.metrics["test_macro_f1"] > 0
    assert str(client.get_model_version_by_alias("covertype", "challenger").version) == "2"
    assert str(client.get_model_version_by_alias("covertype", "champion").version) == "1"
