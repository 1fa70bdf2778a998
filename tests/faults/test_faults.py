"""Failures in the middle, with real processes: each fault lands during the operation it names (the
proxy in front of the service sees it start), then the service comes back and the next run succeeds.

One story, in file order, on the module's own MariaDB, S3 and MLflow server (tests/faults/conftest.py):
batches are collected and turned into features while MariaDB dies; training is killed and retried;
the model's upload meets S3 errors, S3 stopped and the MLflow server killed. After each fault and
recovery: no READY version without loadable artifacts, no run left RUNNING, the champion alias
unchanged unless a complete, verified version won, every stored row once. Each test records its row of
the reliability table (docs/explanation/reliability.md) once it has checked what the row says.
"""

from __future__ import annotations

import os
import time

import httpx
import mlflow
import pandas as pd
import pytest
import sqlalchemy as sa
from kedro.io import DatasetError
from mlflow import MlflowClient

from covertype.config import Settings
from covertype.data.schema import FEATURE_COLUMNS
from covertype.datasets.model_registry_dataset import ModelRegistryDataset
from covertype.registry import (
    ABANDONED_TAG,
    FAILED_STEP_TAG,
    REGISTRATION_TAG,
    ModelRegistry,
    RegistrationFailed,
)
from covertype.stack.processes import free_port
from covertype.stack.services import batch_api
from covertype.stack.serving import bentoml_service
from tests.conftest import PROJECT_ROOT, RECORD
from tests.fault_proxy import CUT, PASS, S3_SLOW_DOWN
from tests.faults.conftest import FaultStack, kill
from tests.kedro_process import KedroRun, run_in_own_process, start_in_own_process

pytestmark = pytest.mark.integration

#: One trial per family: what is checked here is what happens around training, not its search.
SMALL_TRAINING = {"training": {"search": {"trials_per_family": 1, "max_rows": 1_000, "cv_folds": 2}}}
NAMES = {"model_name": "covertype", "champion_alias": "champion", "challenger_alias": "challenger"}
#: How long a test waits for a moment to come (a deadline, not a measured duration).
DEADLINE_SECONDS = 600


def airflow_try(number: int) -> dict[str, str]:
    """The variables Airflow exports to try ``number`` of the DAG run's training task."""
    return {
        "AIRFLOW_CTX_DAG_ID": "covertype",
        "AIRFLOW_CTX_DAG_RUN_ID": "scheduled__2026-12-07T15:05:00+00:00",
        "AIRFLOW_CTX_TASK_ID": "training",
        "AIRFLOW_CTX_TRY_NUMBER": str(number),
    }


def kedro(stack: FaultStack, pipelines: list[str], params: dict | None = None, **env: str) -> tuple[int, str]:
    """`kedro run --env stack --pipelines ...` in a process of its own: exit code and output."""
    run = KedroRun(
        PROJECT_ROOT, "stack", pipelines, params, {**os.environ, **stack.env(**env)}, stack.workdir
    )
    return run_in_own_process(run)


def succeeds(stack: FaultStack, pipelines: list[str], params: dict | None = None, **env: str) -> None:
    code, output = kedro(stack, pipelines, params, **env)
    assert code == 0, output[-5000:]


def stored_rows(stack: FaultStack) -> pd.DataFrame:
    """The raw table's rows (none when it does not exist), read from MariaDB itself, not its proxy."""
    engine = sa.create_engine(f"mysql+pymysql://root:@127.0.0.1:{stack.mariadb_port}/covertype")
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("raw_covertype"):
            return pd.DataFrame(columns=["row_key", "batch_number", "times_seen"])
        return pd.read_sql("SELECT row_key, batch_number, times_seen FROM raw_covertype", connection)


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.5)


def registry(stack: FaultStack) -> ModelRegistry:
    return ModelRegistry(stack.tracking_uri, **NAMES)


def assert_registry_sound(stack: FaultStack) -> dict[str, list[str]]:
    """No run RUNNING, every version complete and loadable: the aliases, for the caller to compare."""
    models = registry(stack)
    client = models.client
    experiment = client.get_experiment_by_name("covertype")
    running = client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
    assert [run.info.run_id for run in running] == []
    for version in models.versions():
        assert version.status == "READY" and version.tags[REGISTRATION_TAG] == "complete"
        assert models.load_model(version).predict_proba is not None
    return models.aliases()


@pytest.fixture(scope="module")
def first_batch_api(fault_stack: FaultStack):
    """A batch API whose batch does not change during the module: retries meet the same batch."""
    port = free_port()
    with batch_api(port, fault_stack.workdir / "api-1", 3600, rows_per_request="all", seed=7):
        yield f"http://127.0.0.1:{port}"


def test_mariadb_killed_while_ingestion_writes_loses_and_doubles_no_row(fault_stack, first_batch_api):
    stack, params = fault_stack, {"batch_api_url": first_batch_api}
    stack.mysql_proxy.rule = lambda chunk: (
        (lambda: kill(stack.mariadb)) if b"INSERT" in chunk and b"raw_covertype" in chunk else PASS
    )
    code, output = kedro(stack, ["ingestion"], params)
    assert code != 0 and "raw_covertype@table" in output, output[-3000:]
    assert "the batch was refused, nothing stored: (2013, 'Lost connection to" in output, output[-3000:]
    assert stack.mysql_proxy.faults == 1, "MariaDB was killed once its INSERT had begun"

    stack.mysql_proxy.heal()
    stack.mariadb.start()  # InnoDB's crash recovery rolls the half-written transaction back
    assert stored_rows(stack).empty
    succeeds(stack, ["ingestion"], params)
    succeeds(stack, ["ingestion"], params)  # a retry of an ingestion that had succeeded
    rows = stored_rows(stack)
    assert len(rows) == 1_500 and rows["row_key"].is_unique and set(rows["times_seen"]) == {1}
    stack.record(
        "MariaDB killed (SIGKILL)",
        "ingestion writing the batch (its INSERT sent)",
        "the run fails: \"raw_covertype@table: the batch was refused, nothing stored: (2013, 'Lost "
        "connection ...')\"; the rerun stores the batch; a second rerun adds nothing",
        "no row of the killed write; 1,500 rows, each once, `times_seen` 1",
    )


def test_mariadb_killed_while_feature_engineering_reads_half_writes_no_feature_table(fault_stack):
    stack = fault_stack

    def kill_at_the_read(chunk: bytes) -> str:
        if b"SELECT" in chunk and b"raw_covertype" in chunk:
            kill(stack.mariadb)  # before the query reaches it
            return CUT
        return PASS

    stack.mysql_proxy.rule, faults = kill_at_the_read, stack.mysql_proxy.faults
    code, output = kedro(stack, ["feature_engineering"])
    assert code != 0 and stack.mysql_proxy.faults > faults, output[-3000:]
    assert "raw_covertype@query" in output and "(2013, 'Lost connection to" in output
    bucket = stack.s3.filesystem()
    assert not bucket.exists("features/features_train.parquet")

    stack.mysql_proxy.heal()
    stack.mariadb.start()
    succeeds(stack, ["feature_engineering"])
    written = [
        pd.read_parquet(bucket.open(f"features/features_{split}.parquet")) for split in ("train", "test")
    ]
    assert sum(len(table) for table in written) == 1_500
    stack.record(
        "MariaDB killed (SIGKILL)",
        "feature engineering reading the raw table",
        "the run fails; the rerun writes both feature tables",
        "no feature table until the rerun; then all 1,500 rows, once",
    )


def test_training_killed_mid_search_then_retried_registers_one_version(fault_stack):
    stack = fault_stack
    client = MlflowClient(stack.tracking_uri)
    log = stack.workdir / "training-try-1.log"
    first = start_in_own_process(
        KedroRun(
            PROJECT_ROOT, "stack", ["training"], SMALL_TRAINING,
            {**os.environ, **stack.env(**airflow_try(1))}, stack.workdir,
        ),
        log,
    )  # fmt: skip

    def searching() -> bool:
        experiment = client.get_experiment_by_name("covertype")
        trials = experiment and client.search_runs(
            [experiment.experiment_id], "tags.mlflow.parentRunId != ''"
        )
        return bool(trials) or not first.is_alive()

    wait_for(searching, "the first search trial")
    assert first.is_alive(), log.read_text()[-3000:]
    first.kill()  # the task's process, SIGKILL: it ends nothing itself
    first.join()

    succeeds(stack, ["training"], SMALL_TRAINING, **airflow_try(2))
    experiment = client.get_experiment_by_name("covertype").experiment_id
    (killed,) = client.search_runs([experiment], "tags.`airflow.try_number` = '1'")
    assert killed.info.status == "FAILED" and killed.data.tags[ABANDONED_TAG]
    (retried,) = client.search_runs([experiment], "tags.`airflow.try_number` = '2'")
    assert retried.info.status == "FINISHED"
    assert retried.info.run_name == "covertype/scheduled__2026-12-07T15:05:00+00:00/training try 2"
    assert assert_registry_sound(stack) == {"1": ["challenger", "champion"]}

    succeeds(stack, ["training"], SMALL_TRAINING, **airflow_try(3))
    assert [str(version.version) for version in registry(stack).versions()] == ["1"]
    stack.record(
        "Training task's process killed (SIGKILL)",
        "during the hyperparameter search",
        "the retry marks the killed run FAILED (`abandoned`), trains and registers version 1; "
        "a third try registers nothing (same fingerprint)",
        "one version, complete and loadable; no run RUNNING",
    )


def answer_slow_down(proxy) -> None:
    """S3 answers every upload 503 Slow Down (the proxy answers for it), until healed."""
    proxy.rule = lambda chunk: S3_SLOW_DOWN if chunk.startswith(b"PUT ") else PASS


@pytest.mark.parametrize(
    ("fault", "break_s3"),
    [
        ("S3 answering 503 Slow Down", answer_slow_down),
        ("S3 stopped (every connection closed and refused)", lambda proxy: proxy.cut_everything()),
    ],
)
def test_s3_failing_while_the_model_uploads_leaves_no_version(fault_stack, monkeypatch, fault, break_s3):
    stack = fault_stack
    monkeypatch.setenv("MLFLOW_TRACKING_URI", stack.tracking_uri)
    # An earlier in-process Kedro session (kedro-mlflow) may have set MLflow's process-wide URI.
    monkeypatch.setattr("mlflow.tracking._tracking_service.utils._tracking_uri", None)
    for name, value in Settings().mlflow_http_environment().items():  # as a training session bounds them
        monkeypatch.setenv(name, value)
    models = registry(stack)
    before, champion = models.aliases(), models.champion()
    model = models.load_model(champion)
    dataset = ModelRegistryDataset(registry={"tracking_uri": stack.tracking_uri, **NAMES})
    test_rows = pd.read_parquet(stack.s3.filesystem().open("features/features_test.parquet"))
    registration = {
        "model": model,
        "input_example": test_rows.loc[:, list(FEATURE_COLUMNS)].head(5),
        "check_records": test_rows.loc[:, list(FEATURE_COLUMNS)].head(100),
        "decision": {"decision": "rejected", "promote": False, "reason": "a fault test"},
        "tags": {"training_rows": champion.tags["training_rows"], "fingerprint": f"fault {fault}"},
        "keep_last": None,
    }
    experiment = models.client.get_experiment_by_name("covertype").experiment_id

    break_s3(stack.s3_proxy)
    started = time.monotonic()
    with mlflow.start_run(experiment_id=experiment) as run:  # it stays active, as kedro-mlflow's does
        with pytest.raises(DatasetError, match="failed at step 'log_model'") as failure:
            dataset.save(registration)
        seconds = time.monotonic() - started
        failed = models.client.get_run(run.info.run_id)
    assert isinstance(failure.value.__cause__, RegistrationFailed)
    assert failed.info.status == "FAILED" and failed.data.tags[FAILED_STEP_TAG] == "log_model"
    assert models.aliases() == before and len(models.versions()) == len(before)

    stack.s3_proxy.heal()
    with mlflow.start_run(experiment_id=experiment):
        dataset.save(registration)
    after = assert_registry_sound(stack)
    assert str(models.champion().version) == str(champion.version)
    assert str(models.challenger().version) == str(models.versions()[0].version) != str(champion.version)
    stack.record(
        fault,
        "the model's artifacts uploading (through the MLflow server)",
        f"registration fails at `log_model` after {seconds:.0f} s (bounded retries); the run is FAILED "
        "with the step; once S3 is back the next registration succeeds",
        f"no new version from the failed run; champion unchanged (version {champion.version}); "
        f"aliases {after}",
    )


def test_mlflow_server_killed_while_training_uploads_the_model(fault_stack, start_batch_api):
    stack = fault_stack
    url = start_batch_api(min_update_seconds=1.0, rows_per_request="all")
    while httpx.get(f"{url}/data", params={"group_number": 1}).json()["batch_number"] < 2:
        time.sleep(1.05)  # the API's batches move on with the clock: batch 2 brings 1,500 new rows
    succeeds(stack, ["ingestion"], {"batch_api_url": url})
    succeeds(stack, ["feature_engineering"])
    models = registry(stack)
    champion, versions_before = str(models.champion().version), len(models.versions())

    def kill_at_model_upload(chunk: bytes) -> str:
        uploading = chunk.startswith(b"PUT /api/2.0/mlflow-artifacts/artifacts/") and b"/models/m-" in chunk
        return (lambda: kill(stack.mlflow)) if uploading else PASS

    stack.mlflow_proxy.rule = kill_at_model_upload
    started, started_ms = time.monotonic(), int(time.time() * 1000)
    code, output = kedro(stack, ["training"], SMALL_TRAINING)
    seconds = time.monotonic() - started
    assert code != 0 and stack.mlflow_proxy.faults >= 1, output[-3000:]
    assert stack.mlflow.process.poll() is not None, "the MLflow server was killed"

    stack.mlflow_proxy.heal()
    stack.start_mlflow()
    succeeds(stack, ["training"], SMALL_TRAINING)  # the next scheduled run
    aliases = assert_registry_sound(stack)
    experiment = models.client.get_experiment_by_name("covertype").experiment_id
    abandoned = f"tags.{ABANDONED_TAG} LIKE 'its process%' AND attributes.start_time >= {started_ms}"
    (killed,) = models.client.search_runs([experiment], abandoned)
    assert killed.info.status == "FAILED"
    new = models.versions()[0]
    assert len(models.versions()) == versions_before + 1 and new.run_id != killed.info.run_id
    won = new.tags["promotion_decision"] == "promoted"
    assert str(models.champion().version) == (str(new.version) if won else champion)
    stack.record(
        "MLflow server killed (SIGKILL)",
        "training uploading the model's artifacts",
        f"the training run fails ({seconds:.0f} s from start to exit, retries bounded); its run stays "
        "RUNNING until the next run marks it FAILED (`abandoned`); the next run registers its version",
        f"no version from the killed run; champion {'the new, verified version' if won else 'unchanged'}; "
        f"aliases {aliases}",
    )


def test_the_service_restarted_while_the_registry_is_unreachable(fault_stack, tmp_path):
    """With a model cache it serves the last champion it loaded, and says so; without, 503 naming the
    registry, until the registry answers again."""
    stack = fault_stack
    env = {**stack.env(), "KEDRO_ENV": "stack", "COVERTYPE_CHAMPION_POLL_SECONDS": "0"}
    cached_env = {**env, "COVERTYPE_MODEL_CACHE_DIR": str(tmp_path / "model-cache")}
    champion = str(registry(stack).champion().version)

    def ask(port: int, api: str, body: dict) -> httpx.Response:
        return httpx.post(f"http://127.0.0.1:{port}/{api}", json=body, timeout=60)

    port = free_port()
    with bentoml_service(port, tmp_path / "before", cached_env):
        assert ask(port, "model_info", {}).json()["source"] == "registry"  # and kept in the cache

    stack.mlflow_proxy.cut_everything()  # the registry unreachable, from here on
    try:
        port = free_port()
        with bentoml_service(port, tmp_path / "cached", cached_env):
            info = ask(port, "model_info", {}).json()
            assert info["version"] == champion
            assert info["source"].startswith(f"local cache: the registry at {stack.tracking_uri} could not")
            answer = ask(port, "predict", {"records": RECORD})
            assert answer.status_code == 200 and answer.json()[0]["model_version"] == champion
        port = free_port()
        with bentoml_service(port, tmp_path / "uncached", env):
            refused = ask(port, "predict", {"records": RECORD})
            assert refused.status_code == 503
            assert f"the registry at {stack.tracking_uri} could not be reached" in refused.text
            stack.mlflow_proxy.heal()
            assert ask(port, "reload", {}).status_code == 200
            assert ask(port, "predict", {"records": RECORD}).json()[0]["model_version"] == champion
    finally:
        stack.mlflow_proxy.heal()
    stack.record(
        "Registry unreachable (MLflow server's connections refused)",
        "the service (re)starting",
        "with `COVERTYPE_MODEL_CACHE_DIR`: serves the last champion it loaded, `/model_info` `source` says "
        "`local cache: ...`; without: `/predict` answers 503 naming the registry, until `/reload` succeeds",
        f"champion version {champion} served from a checksummed local copy, or nothing served",
    )
