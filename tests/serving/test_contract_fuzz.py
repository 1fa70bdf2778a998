"""The service's OpenAPI document is its contract: fuzzing a real `bentoml serve` cannot break it."""

from __future__ import annotations

import pytest

from tests.fuzz import CHECKS_WITHOUT_SERVER_ERRORS, contract_violations

pytestmark = pytest.mark.integration

#: Valid and invalid examples per operation: enough to reach every refusal, bounded for `make test`.
EXAMPLES = 30


def test_no_generated_request_gets_a_server_error_or_an_undocumented_answer(champion_service):
    assert contract_violations(f"{champion_service}/docs.json", EXAMPLES) == []


def test_before_any_champion_the_503_answers_are_documented_too(service_without_champion):
    document = f"{service_without_champion}/docs.json"
    assert contract_violations(document, EXAMPLES // 3, CHECKS_WITHOUT_SERVER_ERRORS) == []
