"""Cycles of `kedro run` (ingestion, monitoring, feature engineering, training) on a shifted source.

The batch API serves the real sample reordered (covertype.data.shift): batches 1 and 2 a mix of
every area, batch 3 on Rawah's rows only. Training needs far more new rows than a batch brings, so
only drift can make it train once a champion exists.
"""

import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from covertype.data.cli import write_csv_atomically
from covertype.data.convert import one_hot_to_api
from covertype.data.shift import one_area_from_batch
from covertype.data.source import load_covertype
from covertype.datasets import SQLAppendDataset
from tests.conftest import kedro_run

pytestmark = pytest.mark.integration

CYCLE = ["ingestion", "monitoring", "feature_engineering", "training"]
PARAMS = {
    "training": {
        "min_new_rows": 100_000,
        "search": {"trials_per_family": 1, "max_rows": 1_000, "cv_folds": 2},
    }
}
ROTATION_SECONDS = 2.0


def table(project: Path, name: str) -> pd.DataFrame:
    return SQLAppendDataset(table_name=name, credentials={"con": f"sqlite:///{project}/raw.db"}).load()


def test_a_shifted_batch_is_flagged_and_retrains_an_unshifted_one_is_not(
    tmp_path, start_batch_api, monkeypatch
):
    source = tmp_path / "rawah_from_batch_3.csv"
    write_csv_atomically(one_area_from_batch(one_hot_to_api(load_covertype("sample")), "Rawah", 3), source)
    monkeypatch.setenv("COVERTYPE_API_DATA", str(source))
    url = start_batch_api(min_update_seconds=ROTATION_SECONDS)
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
        "COVERTYPE_RAW_STORE_URL": f"sqlite:///{tmp_path}/raw.db",
        "COVERTYPE_DATA_DIR": str(tmp_path / "data"),
    }
    for batch in range(3):
        if batch:
            time.sleep(ROTATION_SECONDS)
        kedro_run("local", CYCLE, {**PARAMS, "batch_api_url": url}, environ=env, cwd=tmp_path)

    reports = table(tmp_path, "drift_reports").set_index("batch_number")
    # Batch 1 had no champion to compare with; 2 and 3 are judged against version 1's training split
    # (batch 1's rows on the training side: under 1,000 rows, so p-value tests).
    assert list(reports.index) == [2, 3]
    assert set(reports["reference_version"]) == {"1"} and (reports["reference_rows"] < 1_000).all()
    assert not reports.loc[2, "drifted"] and reports.loc[2, "drift_share"] < 0.5
    assert reports.loc[3, "drifted"] and reports.loc[3, "drifted_fields"] >= 6
    fields = table(tmp_path, "drift_fields")
    assert len(fields) == 24 and set(fields["test"]) == {"ks", "chisquare"}

    client = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    versions = {str(v.version): v for v in client.search_model_versions("name = 'covertype'")}
    # Version 1 (no champion yet), none after the unshifted batch, version 2 after the drifted one.
    assert sorted(map(int, versions)) == [1, 2]
    assert "group 1, batch 3 drifted" in versions["2"].tags["training_reason"]
    runs = client.search_runs(
        [client.get_experiment_by_name("covertype").experiment_id], order_by=["start_time ASC"]
    )
    cycles = [run for run in runs if "promotion_decision" in run.data.tags]
    assert cycles[1].data.tags["promotion_decision"] == "skipped"
    assert "batch 2 did not drift" in cycles[1].data.tags["promotion_reason"]
    assert cycles[2].data.metrics["drift.batch.drifted"] == 1.0
    assert cycles[2].data.metrics["drift.batch.drift_share"] == reports.loc[3, "drift_share"]
    artifacts = {artifact.path for artifact in client.list_artifacts(cycles[2].info.run_id, "drift")}
    assert artifacts == {"drift/drift_report.json", "drift/drift_report.html"}
