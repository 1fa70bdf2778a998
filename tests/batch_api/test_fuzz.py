"""The batch API's OpenAPI document is its contract: fuzzing a real server cannot break it."""

import httpx
import pytest

from covertype.batch_api.rotation import RotationSettings
from tests.fuzz import contract_violations

pytestmark = pytest.mark.integration

#: Valid and invalid examples per operation, bounded for `make test`.
EXAMPLES = 30


def test_no_generated_request_gets_a_server_error_or_an_undocumented_answer(start_batch_api):
    """Batches rotate at every call and group 1 has collected them all, so its 400 is reached too."""
    rotating_api = start_batch_api(min_update_seconds=0)
    for _ in range(RotationSettings().batches):
        httpx.get(f"{rotating_api}/data", params={"group_number": 1}).raise_for_status()
    assert httpx.get(f"{rotating_api}/data", params={"group_number": 1}).status_code == 400
    assert contract_violations(f"{rotating_api}/openapi.json", EXAMPLES) == []
