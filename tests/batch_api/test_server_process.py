"""The console entry point serves the API over real HTTP (uvicorn), and concurrent clients agree."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from covertype.stack.processes import free_port
from covertype.stack.services import batch_api

pytestmark = pytest.mark.integration


def test_a_real_server_serves_the_sample_in_whole_batches(running_batch_api):
    health = httpx.get(f"{running_batch_api}/health").json()
    assert health["rows"] == 15_000 and health["rows_per_request"] == "whole batch"
    answer = httpx.get(f"{running_batch_api}/data", params={"group_number": 2}).json()
    assert answer["batch_number"] == 1 and len(answer["data"]) == 1_500
    assert all(len(row) == 13 and all(isinstance(value, str) for value in row) for row in answer["data"])
    bad = httpx.get(f"{running_batch_api}/data", params={"group_number": 99})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "group_number"]


def test_concurrent_clients_in_one_window_see_one_batch(tmp_path):
    port = free_port()
    with batch_api(port, tmp_path, min_update_seconds=300), ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda _: httpx.get(f"http://127.0.0.1:{port}/data", params={"group_number": 9}).json(),
                range(16),
            )
        )
    assert {answer["batch_number"] for answer in answers} == {1}
    assert all(len(answer["data"]) == 150 for answer in answers), "batch_size // 10 rows by default"
