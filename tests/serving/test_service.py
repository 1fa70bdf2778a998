"""The champion over HTTP: a real `bentoml serve` of a model the project's pipelines trained."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import numpy as np
import pytest
from mlflow import MlflowClient

from covertype.config import Settings
from covertype.data.convert import api_records_to_frame
from covertype.data.schema import API_COLUMNS, COVER_TYPE_NAMES, FEATURE_COLUMNS
from covertype.registry import ModelRegistry
from covertype.serving.champion import load_champion
from covertype.serving.conversion import LOOSEST_TOLERANCE
from covertype.serving.engine import ENGINE, ENGINE_TAG, MAX_DIFFERENCE_TAG, ROWS_CHECKED_TAG
from covertype.serving.schema import CovertypeRecord
from covertype.serving.service import ANSWERS, CovertypeClassifier
from tests.conftest import RECORD, TrainedProject

pytestmark = pytest.mark.integration


def post(service: str, endpoint: str, body: object) -> httpx.Response:
    return httpx.post(f"{service}/{endpoint}", json=body, timeout=60)


@pytest.fixture
def registry(trained_project: TrainedProject) -> MlflowClient:
    """The trained project's registry."""
    uri = trained_project.env["MLFLOW_TRACKING_URI"]
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def in_process_service(tracking_uri: str) -> object:
    """The class behind BentoML's decorator, in this process, checking the alias five times a second."""
    return CovertypeClassifier.inner(Settings(tracking_uri=tracking_uri, champion_poll_seconds=0.2))


def test_a_single_record_gets_its_class_name_and_probabilities(champion_service):
    response = post(champion_service, "predict", {"records": RECORD})
    assert response.status_code == 200
    (prediction,) = response.json()
    assert prediction["cover_type_name"] == COVER_TYPE_NAMES[prediction["cover_type"]]
    assert list(prediction["probabilities"]) == list(COVER_TYPE_NAMES.values())
    assert sum(prediction["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    assert (
        max(prediction["probabilities"], key=prediction["probabilities"].get) == prediction["cover_type_name"]
    )


def test_a_list_of_batch_api_rows_gets_one_prediction_each_in_order(champion_service, api_rows):
    rows = api_rows[:300]
    records = [dict(zip(FEATURE_COLUMNS, row[: len(FEATURE_COLUMNS)], strict=True)) for row in rows]
    response = post(champion_service, "predict", {"records": records})  # strings, as the API serves them
    assert response.status_code == 200
    predicted = [prediction["cover_type"] for prediction in response.json()]
    truth = [int(row[API_COLUMNS.index("Cover_Type")]) for row in rows]
    assert len(predicted) == len(rows)
    assert sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(rows) > 0.6


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"Slope": 91}, "Slope", "less than or equal to 90"),
        ({"Elevation": -1}, "Elevation", "greater than or equal to 0"),
        ({"Aspect": 12.5}, "Aspect", "fractional part"),
        ({"Hillshade_9am": "bright"}, "Hillshade_9am", "valid integer"),
        ({"Soil_Type": "C9999"}, "Soil_Type", "'C2702'"),
        ({"Wilderness_Area": "Yosemite"}, "Wilderness_Area", "'Rawah'"),
        ({"Elevation": None}, "Elevation", "valid integer"),
        ({"Aspect": True}, "Aspect", "not a boolean"),
        ({"Canopy": 3}, "Canopy", "Extra inputs are not permitted"),
    ],
)
@pytest.mark.parametrize("endpoint", ["predict", "explain"])
def test_a_bad_field_gets_400_naming_the_field_and_the_reason(
    champion_service, endpoint, change, field, reason
):
    response = post(champion_service, endpoint, {"records": [RECORD, {**RECORD, **change}]})
    assert response.status_code == 400
    (error,) = response.json()["detail"]
    assert error["loc"] == ["records", 1, field]
    assert reason in error["msg"]


def test_a_missing_field_an_empty_list_and_a_malformed_body_get_400(champion_service):
    missing = {name: value for name, value in RECORD.items() if name != "Slope"}
    assert post(champion_service, "predict", {"records": [missing]}).json()["detail"][0]["loc"] == [
        "records",
        0,
        "Slope",
    ]
    assert post(champion_service, "predict", {"records": []}).status_code == 400
    assert post(champion_service, "predict", [RECORD]).status_code == 400
    malformed = httpx.post(
        f"{champion_service}/predict", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400


def test_whole_numbers_may_come_as_the_batch_api_strings_or_floats_without_fraction(champion_service):
    as_served = {**RECORD, "Elevation": "2596", "Aspect": 51.0}
    assert (
        post(champion_service, "predict", {"records": as_served}).json()
        == post(champion_service, "predict", {"records": RECORD}).json()
    )


@pytest.mark.parametrize("endpoint", ["predict", "model_info", "reload"])
@pytest.mark.parametrize(
    "content_type", ["multipart/form-data", "application/x-www-form-urlencoded", "text/plain"]
)
def test_a_body_that_is_not_json_gets_415_naming_the_type_it_takes(champion_service, endpoint, content_type):
    response = httpx.post(
        f"{champion_service}/{endpoint}", content=b"x", headers={"content-type": content_type}
    )
    assert response.status_code == 415
    assert response.json() == {
        "error": f"this API takes a JSON body (Content-Type: application/json), not {content_type}"
    }


def test_a_body_over_the_byte_limit_gets_413_before_it_is_read_and_naming_the_limit(champion_service):
    limit = Settings().max_request_bytes
    body = b" " * (limit + 1)
    for sent in (body, iter([body])):  # with its length declared, and streamed without one
        response = httpx.post(f"{champion_service}/predict", content=sent, timeout=60)
        assert response.status_code == 413
        assert response.json()["error"] == (
            f"the request body is over the limit of {limit} bytes (COVERTYPE_MAX_REQUEST_BYTES)"
        )


def test_more_records_than_the_limit_get_400_naming_the_limit_and_its_setting(champion_service):
    limit = Settings().max_records_per_request
    response = post(champion_service, "predict", {"records": [RECORD] * (limit + 1)})
    assert response.status_code == 400
    (error,) = response.json()["detail"]
    assert error["loc"] == ["records"]
    assert error["msg"] == (
        f"at most {limit} records per request (COVERTYPE_MAX_RECORDS_PER_REQUEST), not {limit + 1}"
    )


def test_a_version_number_may_be_a_float_without_fraction_as_json_schema_counts_it(
    champion_service, two_versions
):
    by_float = post(champion_service, "predict", {"records": RECORD, "model": float(two_versions.challenger)})
    assert by_float.status_code == 200
    assert by_float.json()[0]["model_version"] == two_versions.challenger
    assert post(champion_service, "predict", {"records": RECORD, "model": 2.5}).status_code == 400


def test_a_refused_request_is_one_warning_line_naming_the_field_and_reason(champion_service, trained_project):
    log = trained_project.workdir / "bentoml" / "bentoml.log"
    before = len(log.read_text())
    assert (
        post(champion_service, "predict", {"records": [RECORD, {**RECORD, "Slope": 91}]}).status_code == 400
    )
    assert eventually(lambda: "records.1.Slope" in log.read_text()[before:])  # one write, traceback too
    written = log.read_text()[before:]
    assert "Exception on" not in written and "Traceback" not in written
    (line,) = [line for line in written.splitlines() if "refused" in line]
    assert "WARNING" in line
    assert "refused POST /predict (400): records.1.Slope: Input should be less than or equal to 90" in line


def test_the_openapi_document_takes_one_record_or_many_and_requires_the_body(champion_service):
    document = httpx.get(f"{champion_service}/docs.json", timeout=30).json()
    predict = document["paths"]["/predict"]["post"]
    assert predict["requestBody"]["required"] is True
    records = predict["requestBody"]["content"]["application/json"]["schema"]["properties"]["records"]
    record = {"$ref": "#/components/schemas/CovertypeRecord"}
    limit = Settings().max_records_per_request
    assert records["anyOf"] == [record, {"type": "array", "items": record, "minItems": 1, "maxItems": limit}]
    assert set(predict["responses"]) == {"200", "400", "404", "410", "413", "415", "503"}
    explain = document["paths"]["/explain"]["post"]
    assert explain["requestBody"] == predict["requestBody"]
    assert set(explain["responses"]) == set(predict["responses"])
    assert explain["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Explanation"},
    }
    detail = document["components"]["schemas"]["ErrorBody"]["properties"]["detail"]
    assert {"type": "array", "items": {"$ref": "#/components/schemas/ValidationIssue"}} in detail["anyOf"]


def test_model_info_names_the_champion_its_run_and_training_metrics(champion_service, registry):
    info = post(champion_service, "model_info", {}).json()
    champion = registry.get_model_version_by_alias("covertype", "champion")
    assert (info["name"], info["alias"], info["version"]) == ("covertype", "champion", str(champion.version))
    assert info["run_id"] == champion.run_id
    assert {"test_accuracy", "test_macro_f1"} <= set(info["metrics"])
    assert info["promoted_at"] is not None  # the pipeline promoted it when it registered it


def test_health_readiness_and_prometheus_metrics_stay_on(champion_service):
    for probe in ("healthz", "livez", "readyz"):
        assert httpx.get(f"{champion_service}/{probe}").status_code == 200
    post(champion_service, "predict", {"records": RECORD})
    metrics = httpx.get(f"{champion_service}/metrics")
    assert metrics.status_code == 200
    assert 'bentoml_service_request_duration_seconds_count{endpoint="/predict"' in metrics.text


def test_reload_serves_a_new_champion_without_restart_and_keeps_the_old_one_when_loading_fails(
    champion_service, trained_project, registry
):
    original = registry.get_model_version_by_alias("covertype", "champion")
    try:
        assert post(champion_service, "reload", {}).json()["reloaded"] is False  # nothing new yet

        newer = registry.create_model_version("covertype", source=original.source, run_id=original.run_id)
        registry.set_registered_model_alias("covertype", "champion", newer.version)
        reloaded = post(champion_service, "reload", {})
        assert reloaded.status_code == 200 and reloaded.json()["reloaded"] is True
        assert post(champion_service, "model_info", {}).json()["version"] == str(newer.version)

        broken = registry.create_model_version("covertype", source=f"{trained_project.workdir}/no-such-model")
        registry.set_registered_model_alias("covertype", "champion", broken.version)
        refused = post(champion_service, "reload", {})
        assert refused.status_code == 503
        assert refused.json()["reloaded"] is False
        assert f"still serving version {newer.version}" in refused.json()["message"]
        assert post(champion_service, "model_info", {}).json()["version"] == str(newer.version)
        assert post(champion_service, "predict", {"records": RECORD}).status_code == 200
    finally:
        registry.set_registered_model_alias("covertype", "champion", original.version)
        post(champion_service, "reload", {})


def test_the_service_follows_the_champion_by_itself_and_survives_a_broken_one(trained_project, registry):
    """Training moves the alias; within a check interval every worker serves the new champion."""
    service = in_process_service(trained_project.env["MLFLOW_TRACKING_URI"])
    original = registry.get_model_version_by_alias("covertype", "champion")
    try:
        newer = registry.create_model_version("covertype", source=original.source, run_id=original.run_id)
        registry.set_registered_model_alias("covertype", "champion", newer.version)
        assert eventually(lambda: service.model_info().version == str(newer.version))

        broken = registry.create_model_version("covertype", source=f"{trained_project.workdir}/no-such-model")
        registry.set_registered_model_alias("covertype", "champion", broken.version)
        time.sleep(1)  # five checks, each finding a version that cannot load
        assert service.model_info().version == str(newer.version)

        registry.set_registered_model_alias("covertype", "champion", original.version)
        assert eventually(lambda: service.model_info().version == str(original.version))
    finally:
        service.stop_following_the_champion()
        registry.set_registered_model_alias("covertype", "champion", original.version)


def test_before_any_champion_the_service_is_up_and_answers_503_then_says_why_on_reload(
    service_without_champion,
):
    assert httpx.get(f"{service_without_champion}/readyz", timeout=30).status_code == 200
    assert post(service_without_champion, "predict", {"records": RECORD}).status_code == 503
    assert post(service_without_champion, "model_info", {}).status_code == 503
    reload = post(service_without_champion, "reload", {})
    assert reload.status_code == 503 and reload.json()["serving"] is None
    assert "no model behind covertype@champion yet" in reload.json()["message"]


def test_a_service_started_before_any_champion_answers_503_until_training_promotes_one(tmp_path, registry):
    empty = f"sqlite:///{tmp_path}/registry.db"
    service = in_process_service(empty)
    try:
        unavailable = service.model_info()
        assert unavailable.status_code == 503
        assert b"no model behind covertype@champion yet" in unavailable.body

        trained = registry.get_model_version_by_alias("covertype", "champion")
        fresh = MlflowClient(tracking_uri=empty, registry_uri=empty)
        fresh.create_registered_model("covertype")
        source = registry.get_model_version_download_uri("covertype", trained.version)
        first = fresh.create_model_version("covertype", source=source)
        fresh.set_registered_model_alias("covertype", "champion", first.version)

        assert eventually(lambda: serves(service, first.version))
        answer = asyncio.run(service.predict([CovertypeRecord(**RECORD)]))
        (prediction,) = ANSWERS.validate_json(answer.body)
        assert 1 <= prediction.cover_type <= 7
    finally:
        service.stop_following_the_champion()


def serves(service: object, version: str) -> bool:
    return getattr(service.model_info(), "version", None) == str(version)  # a 503 answer has none


def eventually(condition: Callable[[], bool], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_the_champion_serves_on_the_engine_registration_proved_and_says_so(champion_service, registry):
    info = post(champion_service, "model_info", {}).json()
    assert info["prediction_path"] == ENGINE
    tags = registry.get_model_version_by_alias("covertype", "champion").tags
    assert tags[ENGINE_TAG] == ENGINE and info["tags"][ENGINE_TAG] == ENGINE
    assert int(tags[ROWS_CHECKED_TAG]) > 0
    assert float(tags[MAX_DIFFERENCE_TAG]) <= LOOSEST_TOLERANCE


@pytest.mark.parametrize("size", [1, 16, 100, 1000, 10_000])
def test_every_request_size_takes_the_one_route_and_gets_the_models_own_answers(
    champion_service, trained_project, api_rows, size
):
    registry = ModelRegistry.from_settings(Settings(tracking_uri=trained_project.env["MLFLOW_TRACKING_URI"]))
    model = registry.load_model(registry.champion())
    rows = api_rows[-size:]
    records = [dict(zip(FEATURE_COLUMNS, row[: len(FEATURE_COLUMNS)], strict=True)) for row in rows]
    expected = model.predict_proba(api_records_to_frame(rows).loc[:, list(FEATURE_COLUMNS)])

    answers = post(champion_service, "predict", {"records": records}).json()
    served = np.array([list(answer["probabilities"].values()) for answer in answers])
    np.testing.assert_allclose(served, expected, rtol=0, atol=LOOSEST_TOLERANCE + 1e-6)  # 6 decimals sent
    assert [answer["cover_type"] for answer in answers] == list(model.classes_[expected.argmax(axis=1)])


def test_a_version_on_the_engine_loads_its_converted_model_alone(trained_project, monkeypatch):
    """No pickle, no Kedro catalog, no feature store: the version's engine file is all it loads."""
    registry = ModelRegistry.from_settings(Settings(tracking_uri=trained_project.env["MLFLOW_TRACKING_URI"]))

    def no_pickle(version: object) -> None:
        raise AssertionError("the model's pickle was loaded")

    monkeypatch.setattr(registry, "load_model", no_pickle)
    monkeypatch.setenv("COVERTYPE_DATA_DIR", str(trained_project.workdir / "no-such-folder"))
    champion = load_champion(registry)
    assert champion.info.prediction_path == ENGINE
    (prediction,) = champion.predict([CovertypeRecord(**RECORD)])
    assert prediction.model_version == champion.info.version


def test_explain_gives_each_fields_contribution_adding_up_to_the_predicted_class_output(
    champion_service, api_rows
):
    records = [dict(zip(FEATURE_COLUMNS, row[: len(FEATURE_COLUMNS)], strict=True)) for row in api_rows[-3:]]
    explanations = post(champion_service, "explain", {"records": records})
    assert explanations.status_code == 200
    predictions = post(champion_service, "predict", {"records": records}).json()
    for explanation, prediction in zip(explanations.json(), predictions, strict=True):
        assert list(explanation["contributions"]) == list(FEATURE_COLUMNS)
        assert explanation["cover_type"] == prediction["cover_type"]
        total = explanation["base_value"] + sum(explanation["contributions"].values())
        assert total == pytest.approx(explanation["value"], abs=1e-9)
        if explanation["output"] == "probability":
            probability = prediction["probabilities"][prediction["cover_type_name"]]
            assert explanation["value"] == pytest.approx(probability, abs=LOOSEST_TOLERANCE + 1e-6)
        assert explanation["model_version"] == prediction["model_version"]


def test_explain_refuses_what_predict_refuses(champion_service):
    assert post(champion_service, "explain", {"records": []}).status_code == 400
    assert post(champion_service, "explain", {"records": RECORD, "model": "nobody"}).status_code == 404
