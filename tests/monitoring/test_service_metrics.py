"""The service's domain metrics on its own /metrics, next to BentoML's: what each request changes."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from covertype.config import Settings
from covertype.data.schema import COVER_TYPE_NAMES, FEATURE_COLUMNS
from tests.conftest import RECORD
from tests.monitoring.conftest import exposed

pytestmark = pytest.mark.integration

PREDICTIONS = "covertype_predictions_total"
MODEL_CALLS = "covertype_model_latency_seconds_count"
MODEL_SECONDS = "covertype_model_latency_seconds_sum"
REJECTED = "covertype_rejected_requests_total"


def predict(service: str, body: object) -> httpx.Response:
    return httpx.post(f"{service}/predict", json=body, timeout=60)


def by_cover_type(samples: dict) -> Counter:
    return Counter(
        {
            dict(labels)["cover_type"]: value
            for (name, labels), value in samples.items()
            if name == PREDICTIONS
        }
    )


def rejected(samples: dict, reason: str) -> float:
    return samples[(REJECTED, frozenset({("reason", reason)}))]


def model_calls(samples: dict) -> float:
    return samples[(MODEL_CALLS, frozenset())]


def test_every_cover_type_is_exposed_from_the_start_with_bentomls_own_metrics(champion_service):
    samples = exposed(champion_service)
    assert set(by_cover_type(samples)) == set(COVER_TYPE_NAMES.values())
    assert any(name.startswith("bentoml_service_request") for name, _ in samples)


def test_each_predicted_record_counts_once_under_its_cover_type_and_the_model_call_is_timed(
    champion_service, api_rows
):
    records = [dict(zip(FEATURE_COLUMNS, row[: len(FEATURE_COLUMNS)], strict=True)) for row in api_rows[:50]]
    before = exposed(champion_service)
    response = predict(champion_service, {"records": records})
    after = exposed(champion_service)
    assert response.status_code == 200
    predicted = Counter(prediction["cover_type_name"] for prediction in response.json())
    assert by_cover_type(after) - by_cover_type(before) == predicted
    assert model_calls(after) - model_calls(before) == 1  # one request alone is one batch
    assert after[(MODEL_SECONDS, frozenset())] > before[(MODEL_SECONDS, frozenset())]


def test_an_invalid_record_is_counted_as_rejected_and_never_reaches_the_model(champion_service):
    before = exposed(champion_service)
    response = predict(champion_service, {"records": [RECORD, {**RECORD, "Slope": 91}]})
    after = exposed(champion_service)
    assert response.status_code == 400
    assert rejected(after, "invalid_input") - rejected(before, "invalid_input") == 1
    assert by_cover_type(after) == by_cover_type(before)
    assert model_calls(after) == model_calls(before)


def test_a_body_that_is_not_json_or_too_large_is_counted_by_its_reason(champion_service):
    before = exposed(champion_service)
    not_json = httpx.post(f"{champion_service}/predict", content=b"x", headers={"content-type": "text/csv"})
    too_large = httpx.post(f"{champion_service}/predict", content=b" " * (Settings().max_request_bytes + 1))
    after = exposed(champion_service)
    assert (not_json.status_code, too_large.status_code) == (415, 413)
    for reason in ("unsupported_media_type", "request_too_large"):
        assert rejected(after, reason) - rejected(before, reason) == 1


def test_the_served_version_is_the_one_model_info_set_to_1(champion_service):
    served = httpx.post(f"{champion_service}/model_info", json={}, timeout=30).json()
    info = {
        dict(labels)["version"]: (dict(labels), value)
        for (name, labels), value in exposed(champion_service).items()
        if name == "covertype_model_info"
    }
    labels, value = info.pop(served["version"])
    assert labels == {label: served[label] for label in ("name", "version", "alias", "prediction_path")}
    assert value == 1
    assert all(value == 0 for _, value in info.values())  # versions served before a reload


def test_a_prediction_without_a_champion_is_rejected_as_no_champion(service_without_champion):
    before = exposed(service_without_champion)
    response = predict(service_without_champion, {"records": RECORD})
    after = exposed(service_without_champion)
    assert response.status_code == 503
    assert rejected(after, "no_champion") - rejected(before, "no_champion") == 1
    assert not any(name == "covertype_model_info" for name, _ in after)
