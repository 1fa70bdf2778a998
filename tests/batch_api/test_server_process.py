"""The console entry point serves the API over real HTTP (uvicorn), and concurrent clients agree."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import pandas as pd
import pytest

from covertype.batch_api.__main__ import feature_engineering_test_fraction
from covertype.data.convert import api_records_to_frame
from covertype.data.resample import real_holdout
from covertype.data.schema import API_COLUMNS, FEATURE_COLUMNS
from covertype.pipelines.ingestion.nodes import flag_invalid_rows
from covertype.stack.processes import free_port
from covertype.stack.services import batch_api

pytestmark = pytest.mark.integration


def test_a_real_server_serves_the_sample_in_whole_batches(running_batch_api):
    health = httpx.get(f"{running_batch_api}/health").json()
    assert health["rows"] == 15_000 and health["rows_per_request"] == "whole batch"
    assert health["synthetic"] is False and "real rows" in health["data"]
    assert "SYNTHETIC" not in httpx.get(running_batch_api).json()["message"]
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


def test_a_synthetic_source_says_so_and_never_serves_the_real_test_split(start_batch_api, api_rows, tmp_path):
    url = start_batch_api(source="synthetic", rows=20_000, rows_per_request="all")
    health = httpx.get(f"{url}/health").json()
    assert health["synthetic"] is True and health["rows"] == 20_000
    assert health["data"].startswith("SYNTHETIC") and "SYNTHETIC" in httpx.get(url).json()["message"]
    log = next(tmp_path.glob("batch_api_*/batch_api.log")).read_text()
    assert "WARNING covertype.batch_api: Serving SYNTHETIC" in log
    served = pd.DataFrame(
        httpx.get(f"{url}/data", params={"group_number": 1}).json()["data"], columns=API_COLUMNS
    )
    assert len(served) == 2_000 and not served.duplicated().any()
    held_out = real_holdout(pd.DataFrame(api_rows, columns=API_COLUMNS), feature_engineering_test_fraction())
    assert served.merge(held_out, on=list(FEATURE_COLUMNS)).empty, "a real test-split row was served"
    flagged = flag_invalid_rows(api_records_to_frame(served.to_numpy().tolist()))
    assert (flagged["problems"] == "").all(), "every synthetic row keeps the record contract"
