"""Each page of the Streamlit app, run with AppTest against the real service, registry and raw store."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from covertype.data.schema import API_COLUMNS, COVER_TYPE_NAMES
from covertype.stack.airflow import DAG_ID, admin_password, airflow_environment, airflow_services, migrate
from covertype.stack.processes import free_port
from covertype.ui.sources import example_batch_csv, read_batch_csv
from tests.conftest import TrainedProject, TwoVersions

pytestmark = pytest.mark.integration

VIEWS = Path(__file__).resolve().parents[2] / "src/covertype/ui/views"


@pytest.fixture
def connected(monkeypatch, champion_service: str, trained_project: TrainedProject) -> None:
    """The app's sources are the session's service, registry and raw store (AppTest runs in-process)."""
    monkeypatch.setenv("COVERTYPE_SERVICE_URL", champion_service)
    for name, value in trained_project.env.items():
        monkeypatch.setenv(name, value)


def page(name: str) -> AppTest:
    return AppTest.from_file(str(VIEWS / f"{name}.py"), default_timeout=90).run()


def pick_version(app: AppTest, number: str) -> AppTest:
    """Choose version ``number`` in the page's version picker (options are shown by their labels)."""
    picker = app.selectbox(key="model")
    (index,) = [i for i, label in enumerate(picker.options) if label.startswith(f"Version {number} ")]
    return picker.select_index(index).run()


def test_predict_page_shows_the_champions_answer_its_probabilities_and_each_fields_contribution(
    connected, two_versions
):
    app = page("predict")
    assert not app.exception
    assert len(app.number_input) + len(app.slider) == 10 and len(app.selectbox) == 3
    assert app.selectbox(key="model").value is None  # the champion by default
    app.button[0].click().run()
    assert not app.exception and not app.error
    (answer,) = app.success
    assert any(name in answer.value for name in COVER_TYPE_NAMES.values())
    assert f"answered by version {two_versions.champion} (@champion)" in answer.value
    assert len(app.get("vega_lite_chart")) == 2  # the probabilities, then each field's contribution
    assert not app.warning
    assert "exact TreeSHAP" in app.caption[0].value


def test_predict_pages_answer_stands_beside_the_form_not_below_it(connected, two_versions):
    app = page("predict")
    assert [caption.value for caption in app.caption][-1].startswith("The predicted cover type")
    app.button[0].click().run()
    (answer_column,) = [column for column in app.columns if len(column.success)]
    assert not answer_column.button, "the Predict button is in the form's column, the answer in another"
    assert answer_column.get("vega_lite_chart") and answer_column.metric[0].label == "Confidence"


def test_predict_page_answers_with_the_version_picked_and_names_it(connected, two_versions: TwoVersions):
    app = pick_version(page("predict"), two_versions.challenger)
    assert any(
        label.startswith(f"Version {two_versions.champion} @champion")
        for label in app.selectbox(key="model").options
    )
    app.button[0].click().run()
    assert not app.exception and not app.error
    (answer,) = app.success
    assert f"answered by version {two_versions.challenger} (@challenger)" in answer.value


def test_batch_page_scores_an_uploaded_csv_and_offers_the_download(connected, api_rows, two_versions):
    header = ",".join(API_COLUMNS)
    csv = "\n".join([header, *(",".join(row) for row in api_rows[:120])]).encode()
    app = pick_version(page("batch"), two_versions.challenger)
    app.file_uploader[0].set_value(("batch.csv", csv, "text/csv")).run()
    assert not app.exception and not app.error
    scored = app.dataframe[0].value
    assert len(scored) == 120
    assert set(scored["model_version"]) == {two_versions.challenger}
    assert any(f"version {two_versions.challenger} (@challenger)" in caption.value for caption in app.caption)
    assert set(scored["predicted_name"]) <= set(COVER_TYPE_NAMES.values())
    assert [metric.label for metric in app.metric][:1] == ["Records"]
    assert len(app.get("download_button")) == 2  # the example file, and the predictions


def test_batch_page_offers_an_example_file_of_every_cover_type_that_it_scores_with_accuracy(connected):
    app = page("batch")
    (example,) = app.get("download_button")
    assert example.proto.label == "Download an example file"
    csv = example_batch_csv()
    assert set(read_batch_csv(io.BytesIO(csv))["Cover_Type"].astype(int)) == set(COVER_TYPE_NAMES)

    app.file_uploader[0].set_value(("covertype_example_batch.csv", csv, "text/csv")).run()

    assert not app.exception and not app.error
    assert [metric.label for metric in app.metric] == [
        "Records",
        "Mean confidence",
        "Accuracy against Cover_Type",
    ]


def test_batch_page_names_the_row_and_field_the_service_refused(connected, api_rows):
    rows = [list(row) for row in api_rows[:3]]
    rows[2][API_COLUMNS.index("Slope")] = "95"
    app = page("batch")
    app.file_uploader[0].set_value(("batch.csv", "\n".join(",".join(r) for r in rows).encode(), "text/csv"))
    app.run()
    assert not app.exception
    assert "row 3, Slope" in app.error[0].value


def test_model_page_shows_the_champion_its_version_history_and_confusion_matrix(connected):
    app = page("model")
    assert not app.exception and not app.error
    assert app.metric[0].value.startswith("covertype v")
    history = app.dataframe[0].value
    assert history["champion"].sum() == 1 and {"test_accuracy", "test_macro_f1"} <= set(history.columns)
    assert app.get("image"), "the training run's confusion matrix is shown"


def test_data_page_shows_rows_and_classes_per_batch_and_drift_between_batches(connected):
    app = page("data")
    assert not app.exception and not app.error
    assert [header.value for header in app.subheader] == [
        "Rows stored per batch",
        "Cover types per batch",
        "Drift between two batches",
    ]
    drift = app.dataframe[0].value
    assert len(drift) == 12 and set(drift["test"]) <= {"ks", "chisquare", "z", "wasserstein", "jensenshannon"}


def test_pages_say_plainly_when_the_service_and_the_registry_are_unreachable(monkeypatch, tmp_path):
    st.cache_data.clear()  # AppTest runs in this process: forget the raw store other tests read
    monkeypatch.setenv("COVERTYPE_SERVICE_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("COVERTYPE_RAW_STORE_URL", f"sqlite:///{tmp_path}/empty.db")
    predict = page("predict")
    predict.button[0].click().run()
    assert "not reachable" in predict.error[0].value
    model = page("model")
    assert "not reachable" in model.warning[0].value and "registry" in model.error[0].value
    data = page("data")
    assert "raw store" in data.error[0].value
    assert not (predict.exception or model.exception or data.exception)


def test_the_predict_page_says_plainly_that_the_service_has_no_champion_yet(
    monkeypatch, service_without_champion
):
    monkeypatch.setenv("COVERTYPE_SERVICE_URL", service_without_champion)
    predict = page("predict")
    predict.button[0].click().run()
    assert not predict.exception
    assert "no champion model to serve yet" in predict.error[0].value


@pytest.fixture
def controlled(monkeypatch, connected, running_batch_api: str) -> str:
    """The connected app, with the session's batch API and no Airflow configured: the batch API's URL."""
    monkeypatch.setenv("COVERTYPE_BATCH_API_URL", running_batch_api)
    monkeypatch.setenv("COVERTYPE_GROUP_NUMBER", "5")
    monkeypatch.delenv("COVERTYPE_AIRFLOW_URL", raising=False)
    return running_batch_api


def test_control_page_shows_each_service_up_and_our_groups_batch_and_time_to_the_next(controlled):
    httpx.get(f"{controlled}/data", params={"group_number": 5}).raise_for_status()
    app = page("control")
    assert not app.exception and not app.error and not app.warning
    services = app.dataframe[0].value
    assert dict(zip(services["service"], services["state"], strict=True)) == {
        "bentoml": "up",
        "batch-api": "up",
    }
    assert services["reason"].tolist() == ["HTTP 200", "HTTP 200"]
    current, rotation = app.metric
    assert (current.label, current.value) == ("Current batch", "1 of 10")
    assert rotation.label == "Next rotation in" and rotation.value.endswith(" s")
    assert not app.button(key="reload").value
    assert any("No Airflow is configured" in caption.value for caption in app.caption)
    assert httpx.get(f"{controlled}/data", params={"group_number": 5}).json()["batch_number"] == 1


def test_control_page_without_a_batch_api_says_so_once(connected, monkeypatch):
    monkeypatch.delenv("COVERTYPE_BATCH_API_URL", raising=False)
    app = page("control")
    assert not app.exception and not app.info
    assert "Batch API" in [header.value for header in app.subheader]
    assert not any(header.value.startswith("Batch API: group") for header in app.subheader)
    notes = [caption.value for caption in app.caption if "batch API" in caption.value]
    assert notes == [
        "No batch API is configured: set COVERTYPE_BATCH_API_URL to see our group's batch and rotation."
    ]


def test_control_page_says_when_our_group_has_not_been_served_yet(controlled, monkeypatch):
    monkeypatch.setenv("COVERTYPE_GROUP_NUMBER", "6")
    app = page("control")
    assert not app.exception
    assert "Group 6 has not been served yet" in app.info[0].value


def test_the_reload_button_says_what_the_service_did(controlled):
    app = page("control")
    before = {message.value for message in [*app.success, *app.info]}
    app.button(key="reload").click().run()
    assert not app.exception and not app.error
    (answer,) = {message.value for message in [*app.success, *app.info]} - before
    assert "nothing to load" in answer or "now serving version" in answer


def test_control_page_says_why_each_service_is_down_and_why_each_action_failed(monkeypatch):
    for variable in (
        "COVERTYPE_SERVICE_URL",
        "MLFLOW_TRACKING_URI",
        "COVERTYPE_BATCH_API_URL",
        "COVERTYPE_AIRFLOW_URL",
    ):
        monkeypatch.setenv(variable, f"http://127.0.0.1:{free_port()}")
    app = page("control")
    assert not app.exception
    services = app.dataframe[0].value
    assert services["service"].tolist() == ["bentoml", "mlflow", "batch-api", "airflow"]
    assert (
        set(services["state"]) == {"down"} and services["reason"].str.startswith("connection refused").all()
    )
    assert app.warning[0].value.startswith("Not up: bentoml, mlflow, batch-api, airflow.")
    assert "did not say where the groups stand" in app.info[0].value
    app.button(key="reload").click().run()
    (failed,) = app.error
    assert "prediction service" in failed.value and "not reachable" in failed.value
    app.button(key="trigger").click().run()
    (failed,) = app.error
    assert failed.value.startswith("Airflow at") and "not reachable" in failed.value


@pytest.fixture(scope="module")
def airflow_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real Airflow api-server and dag-processor with the project's DAG, and no scheduler (a triggered
    run stays queued): its URL and the admin's password."""
    home = tmp_path_factory.mktemp("airflow")
    port = free_port()
    env = airflow_environment(home, port=port, settings={})
    migrate(env, home / "migrate.log")
    api_server, dag_processor, _scheduler = airflow_services(env, home / "logs")
    with ExitStack() as running:
        running.enter_context(api_server)
        running.enter_context(dag_processor)
        url, password = f"http://127.0.0.1:{port}", admin_password(home)
        login = httpx.post(f"{url}/auth/token", json={"username": "admin", "password": password}, timeout=30)
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        parsed = Retrying(
            stop=stop_after_delay(180),
            wait=wait_fixed(2),
            retry=retry_if_result(lambda status: status != 200),
        )
        parsed(lambda: httpx.get(f"{url}/api/v2/dags/{DAG_ID}", headers=headers, timeout=30).status_code)
        yield url, password


def test_the_trigger_button_queues_a_run_of_the_dag_in_a_real_airflow(controlled, monkeypatch, airflow_api):
    url, password = airflow_api
    monkeypatch.setenv("COVERTYPE_AIRFLOW_URL", url)
    monkeypatch.setenv("COVERTYPE_AIRFLOW_PASSWORD", password)
    app = page("control")
    services = app.dataframe[0].value
    assert services.loc[services["service"] == "airflow", "state"].tolist() == ["up"]
    app.button(key="trigger").click().run()
    assert not app.exception and not app.error
    (queued,) = app.success
    run_id = queued.value.split("`")[1]
    login = httpx.post(f"{url}/auth/token", json={"username": "admin", "password": password}, timeout=30)
    run = httpx.get(
        f"{url}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}",
        headers={"Authorization": f"Bearer {login.json()['access_token']}"},
        timeout=30,
    )
    assert run.status_code == 200 and run.json()["run_type"] == "manual"


def test_the_trigger_button_says_when_airflow_refuses_the_login(controlled, monkeypatch, airflow_api):
    monkeypatch.setenv("COVERTYPE_AIRFLOW_URL", airflow_api[0])
    monkeypatch.setenv("COVERTYPE_AIRFLOW_PASSWORD", "not-the-password")
    app = page("control")
    app.button(key="trigger").click().run()
    (refused,) = app.error
    assert (
        "refused the login of user 'admin'" in refused.value and "COVERTYPE_AIRFLOW_PASSWORD" in refused.value
    )
