"""The prediction log's writer in-process: lines per record, rotation, and drops that never block."""

from __future__ import annotations

import json

from tenacity import Retrying, stop_after_delay, wait_fixed

from covertype.datasets.prediction_log_dataset import PredictionLogDataset
from covertype.serving.prediction_log import DROPPED, PredictionLog
from tests.conftest import RECORD

ANSWER = {"cover_type": 2, "cover_type_name": "Lodgepole Pine", "probabilities": {"Lodgepole Pine": 1.0}}


def bodies(records: int, version: str = "3") -> tuple[bytes, bytes]:
    request = json.dumps({"records": [RECORD] * records}).encode()
    return request, json.dumps([{**ANSWER, "model_version": version}] * records).encode()


def dropped(reason: str) -> float:
    return DROPPED.labels(reason=reason)._value.get()


def test_each_record_becomes_a_line_and_the_files_rotate(tmp_path):
    for number in range(20):  # each close writes what is pending: 20 batches of two requests
        log = PredictionLog(tmp_path, max_bytes=2_000, backups=50, queue_bytes=10_000_000)
        log.offer(*bodies(2), request_id=f"r{number}")
        log.offer(*bodies(1), request_id=f"s{number}")
        log.close()
    log = PredictionLog(tmp_path, max_bytes=2_000, backups=50, queue_bytes=10_000_000)
    as_served = {**RECORD, "Elevation": str(RECORD["Elevation"])}  # the service takes digits as text
    log.offer(json.dumps({"records": as_served}, indent=2).encode(), bodies(1)[1], request_id="single")
    log.close()
    lines = PredictionLogDataset(path=str(tmp_path)).load()
    assert len(lines) == 61 and lines["request_id"].value_counts()["r7"] == 2
    assert (lines["Elevation"] == RECORD["Elevation"]).all() and set(lines["model_version"]) == {"3"}
    assert len(list(tmp_path.iterdir())) > 2, "2 kB files: rotated"
    assert lines["request_id"].iloc[-1] == "single" and lines["Elevation"].iloc[-1] == RECORD["Elevation"]


def test_a_full_queue_drops_and_counts_without_waiting(tmp_path):
    before = dropped("queue_full")
    log = PredictionLog(tmp_path, max_bytes=1_000_000, backups=1, queue_bytes=10)
    log.offer(*bodies(3), request_id="too-big")
    log.close()
    assert dropped("queue_full") - before == 3
    assert PredictionLogDataset(path=str(tmp_path)).load().empty


def test_an_unwritable_folder_counts_the_records_it_could_not_write(tmp_path):
    before = dropped("write_failed")
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    log = PredictionLog(blocked / "log", max_bytes=1_000_000, backups=1, queue_bytes=10_000_000)
    log.offer(*bodies(4), request_id="lost")
    for attempt in Retrying(stop=stop_after_delay(10), wait=wait_fixed(0.05), reraise=True):
        with attempt:
            assert dropped("write_failed") - before == 4
    log.close()
