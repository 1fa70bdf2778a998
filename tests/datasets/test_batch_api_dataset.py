"""The catalog's view of the batch API: draws on demand, retries, pauses, and a clean end of collection."""

import threading

import httpx
import pandas as pd
import pytest
from kedro.io import DatasetError

from covertype.datasets import BatchAPIDataset, BatchDraws
from covertype.datasets.batch_api_dataset import BatchAPIUnreachable
from covertype.stack.processes import free_port
from tests.http_stub import serve

pytestmark = pytest.mark.integration

ONE_ROW_BATCH = (
    b'{"group_number":1,"batch_number":3,"data":'
    b'[["2596","51","3","258","0","510","221","232","148","6279","Rawah","C7745","5"]]}'
)


def test_each_draw_is_one_call_for_the_current_batch(running_batch_api, api_rows):
    draws = BatchAPIDataset(url=running_batch_api, group_number=4).load()
    first, second = draws.draw(), draws.draw()
    assert (first.group_number, first.batch_number, second.batch_number) == (4, 1, 1)
    assert sorted(first.records) == sorted(api_rows[:1_500]), "batch 1, whole, strings as served"
    assert not first.collection_finished and first.collected_at.tz is not None


def test_the_completion_answer_is_a_draw_without_a_batch_with_a_log_line(start_batch_api, caplog):
    url = start_batch_api(min_update_seconds=0.2)
    for _ in range(10):
        httpx.get(f"{url}/data", params={"group_number": 6})
        threading.Event().wait(0.25)
    with caplog.at_level("INFO", logger="covertype.datasets.batch_api_dataset"):
        draw = BatchAPIDataset(url=url, group_number=6).load().draw()
    assert draw.collection_finished and draw.batch_number is None and draw.records == []
    assert any("collection finished for group 6" in record.getMessage() for record in caplog.records)


def test_a_draw_waits_the_pause_after_the_previous_call_ended():
    served = _serve_sequence([(200, ONE_ROW_BATCH)])
    now, slept = [100.0], []
    draws = BatchDraws(BatchAPIDataset(url=served, group_number=1), clock=lambda: now[0], sleep=slept.append)
    draws.draw(pause_seconds=5.0)  # the first call does not wait
    now[0] += 2.0
    draws.draw(pause_seconds=5.0)
    assert slept == [3.0] and draws.elapsed_seconds == 2.0


def test_a_course_style_spanish_completion_answer_is_recognised():
    served = _serve_sequence(
        [(400, b'{"detail":"Ya se recolect\\u00f3 toda la informaci\\u00f3n minima necesaria"}')]
    )
    assert BatchAPIDataset(url=served, group_number=1, max_attempts=1).fetch() == (None, [])


def test_a_bad_group_is_an_error_not_a_completion():
    served = _serve_sequence([(400, b'{"detail":"N\\u00famero de grupo inv\\u00e1lido"}')])
    with pytest.raises(DatasetError, match="HTTP 400"):
        BatchAPIDataset(url=served, group_number=11, max_attempts=1).fetch()


def test_server_errors_are_retried_with_backoff(caplog):
    served = _serve_sequence([(503, b"busy"), (502, b"bad gateway"), (200, ONE_ROW_BATCH)])
    with caplog.at_level("WARNING", logger="covertype.datasets.batch_api_dataset"):
        batch_number, records = BatchAPIDataset(
            url=served, group_number=1, max_attempts=3, backoff_seconds=0.01
        ).fetch()
    assert batch_number == 3 and records[0][0] == "2596"
    retries = [record.getMessage() for record in caplog.records]
    assert len(retries) == 2
    assert "HTTP 503: busy; retry 1/2" in retries[0] and "HTTP 502: bad gateway; retry 2/2" in retries[1]


def test_client_errors_are_answers_not_retried():
    served = _serve_sequence([(400, b'{"detail":"Invalid group"}'), (200, ONE_ROW_BATCH)])
    with pytest.raises(DatasetError, match="refused group 1: HTTP 400"):
        BatchAPIDataset(url=served, group_number=1, max_attempts=3, backoff_seconds=0.01).fetch()


def test_a_server_that_keeps_failing_ends_with_its_last_answer():
    served = _serve_sequence([(503, b"busy")])
    dataset = BatchAPIDataset(url=served, group_number=1, max_attempts=2, backoff_seconds=0.01)
    with pytest.raises(DatasetError, match=r"failed 2 times for group 1: HTTP 503: busy\. Is it running\?"):
        dataset.fetch()


def test_a_refused_connection_is_not_retried_and_says_what_to_start(caplog):
    url = f"http://127.0.0.1:{free_port()}"
    dataset = BatchAPIDataset(url=url, group_number=1, max_attempts=5, backoff_seconds=10)

    with (
        caplog.at_level("WARNING", logger="covertype.datasets.batch_api_dataset"),
        pytest.raises(BatchAPIUnreachable) as refused,
    ):
        dataset.fetch()

    message = str(refused.value)
    assert "\n" not in message
    assert f"No batch API answers at {url}" in message
    for remedy in ("COVERTYPE_BATCH_API_URL", "`uv run covertype-batch-api`", "`make demo`"):
        assert remedy in message
    assert caplog.records == []  # not one retry: nothing listens there, waiting changes nothing


def test_the_api_is_read_only():
    with pytest.raises(DatasetError, match="read-only"):
        BatchAPIDataset(url="http://127.0.0.1:1", group_number=1).save(pd.DataFrame())


def _serve_sequence(answers: list[tuple[int, bytes]]) -> str:
    """A real HTTP server that gives these answers in turn (the last one thereafter)."""
    remaining = list(answers)
    return serve(lambda _: remaining.pop(0) if len(remaining) > 1 else remaining[0])
