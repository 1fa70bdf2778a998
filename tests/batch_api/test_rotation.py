"""The batch API's contract, with time injected: the course's behaviour, its defects fixed."""

import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from covertype.batch_api import BatchRotation, RotationSettings, create_app

WINDOW = 300.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def numbered_rows(count: int) -> list[list[str]]:
    """Rows whose first field is their position, so a test can tell which slice a row came from."""
    return [[str(index), *["0"] * 11, "1"] for index in range(count)]


def make_client(tmp_path: Path, rows, **settings) -> tuple[TestClient, Clock, BatchRotation]:
    clock = Clock()
    rotation = BatchRotation(
        rows, tmp_path / "state.sqlite3", RotationSettings(min_update_seconds=WINDOW, **settings)
    )
    return TestClient(create_app(rotation, clock)), clock, rotation


def positions(answer: dict) -> list[int]:
    return [int(row[0]) for row in answer["data"]]


def test_a_group_gets_batches_1_to_10_one_per_window_then_400(tmp_path):
    client, clock, rotation = make_client(tmp_path, numbered_rows(1000))
    served = []
    for _ in range(10):
        answer = client.get("/data", params={"group_number": 3}).json()
        served.append(answer["batch_number"])
        start, stop = rotation.batch_bounds(answer["batch_number"])
        assert answer["group_number"] == 3
        assert len(answer["data"]) == 10, "batch_size // 10 rows per call, as the course serves"
        assert all(start <= position < stop for position in positions(answer)), (
            "sliced by batch, not by group"
        )
        clock.now += WINDOW
    assert served == list(range(1, 11))
    finished = client.get("/data", params={"group_number": 3})
    assert finished.status_code == 400
    assert "All the data was collected" in finished.json()["detail"]


def test_a_batch_is_served_for_its_whole_window_including_the_last(tmp_path):
    client, clock, _ = make_client(tmp_path, numbered_rows(1000))
    for batch in range(1, 11):
        for _ in range(3):
            assert client.get("/data", params={"group_number": 1}).json()["batch_number"] == batch
            clock.now += WINDOW / 4
        clock.now += WINDOW / 4
    assert client.get("/data", params={"group_number": 1}).status_code == 400


def test_groups_rotate_independently(tmp_path):
    client, clock, _ = make_client(tmp_path, numbered_rows(1000))
    client.get("/data", params={"group_number": 1})
    clock.now += WINDOW
    assert client.get("/data", params={"group_number": 1}).json()["batch_number"] == 2
    assert client.get("/data", params={"group_number": 2}).json()["batch_number"] == 1


def test_restart_starts_the_group_over(tmp_path):
    client, clock, _ = make_client(tmp_path, numbered_rows(1000))
    for _ in range(11):
        client.get("/data", params={"group_number": 5})
        clock.now += WINDOW
    assert client.get("/restart_data_generation", params={"group_number": 5}).json() == ["ok"]
    assert client.get("/data", params={"group_number": 5}).json()["batch_number"] == 1


@pytest.mark.parametrize("value", ["0", "11", "-1", "abc", "1.5"])
@pytest.mark.parametrize("path", ["/data", "/restart_data_generation"])
def test_a_bad_group_number_gets_422_naming_the_field(tmp_path, path, value):
    client, _, _ = make_client(tmp_path, numbered_rows(1000))
    answer = client.get(path, params={"group_number": value})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "group_number"]


def test_a_missing_group_number_gets_422_naming_the_field(tmp_path):
    client, _, _ = make_client(tmp_path, numbered_rows(1000))
    answer = client.get("/data")
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["query", "group_number"]


def test_the_last_batch_runs_to_the_end_of_the_data_and_is_never_oversampled(tmp_path):
    client, clock, rotation = make_client(tmp_path, numbered_rows(1005), rows_per_request=150)
    assert rotation.batch_bounds(10) == (900, 1005)
    for _ in range(9):
        client.get("/data", params={"group_number": 1})
        clock.now += WINDOW
    last = client.get("/data", params={"group_number": 1}).json()
    assert last["batch_number"] == 10
    assert sorted(positions(last)) == list(range(900, 1005)), "all 105 rows, not a 150-row sample"


def test_whole_batches_cover_the_data_exactly_once(tmp_path):
    client, clock, _ = make_client(tmp_path, numbered_rows(1005), rows_per_request=0)
    seen = []
    for _ in range(10):
        seen += positions(client.get("/data", params={"group_number": 1}).json())
        clock.now += WINDOW
    assert sorted(seen) == list(range(1005))


def test_the_same_seed_serves_the_same_rows(tmp_path):
    first, _, _ = make_client(tmp_path / "a", numbered_rows(1000), seed=42)
    second, _, _ = make_client(tmp_path / "b", numbered_rows(1000), seed=42)
    other, _, _ = make_client(tmp_path / "c", numbered_rows(1000), seed=43)
    calls = [
        [positions(client.get("/data", params={"group_number": 1}).json()) for _ in range(2)]
        for client in (first, second, other)
    ]
    assert calls[0] == calls[1]
    assert calls[0][0] != calls[0][1], "each call draws a new sample of the batch"
    assert calls[0] != calls[2]


def test_the_state_survives_a_restart_of_the_api(tmp_path):
    client, clock, _ = make_client(tmp_path, numbered_rows(1000))
    for _ in range(3):
        client.get("/data", params={"group_number": 4})
        clock.now += WINDOW
    restarted_rotation = BatchRotation(
        numbered_rows(1000), tmp_path / "state.sqlite3", RotationSettings(WINDOW)
    )
    restarted = TestClient(create_app(restarted_rotation, lambda: clock.now - WINDOW / 2))
    assert restarted.get("/data", params={"group_number": 4}).json()["batch_number"] == 3


def test_concurrent_requests_at_a_rotation_boundary_advance_the_batch_once(tmp_path):
    rotation = BatchRotation(numbered_rows(1000), tmp_path / "state.sqlite3", RotationSettings(WINDOW))
    rotation.serve(1, now=0.0)
    workers = 8
    barrier = threading.Barrier(workers)
    batches: list[int] = []

    def call() -> None:
        barrier.wait()
        batches.append(rotation.serve(1, now=WINDOW).batch_number)

    threads = [threading.Thread(target=call) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert batches == [2] * workers
    assert rotation.serve(1, now=WINDOW + 1).batch_number == 2


def test_health_describes_what_is_served(tmp_path):
    client, _, _ = make_client(tmp_path, numbered_rows(1005))
    assert client.get("/health").json() == {
        "status": "ok", "synthetic": False, "data": "rows given by the caller", "rows": 1005,
        "batches": 10, "batch_size": 100,
        "rows_per_request": 10, "min_update_seconds": WINDOW, "groups": [],
    }  # fmt: skip
    assert "group_number" in client.get("/").json()["message"]


def test_health_says_each_served_groups_batch_and_time_to_the_next_without_moving_it(tmp_path):
    client, clock, _ = make_client(tmp_path, numbered_rows(1000))
    client.get("/data", params={"group_number": 4})
    clock.now += 100
    for _ in range(3):
        groups = client.get("/health").json()["groups"]
        assert groups == [
            {"group_number": 4, "batch_number": 1, "seconds_to_next_batch": WINDOW - 100, "finished": False}
        ]
    clock.now += WINDOW
    assert client.get("/health").json()["groups"][0]["seconds_to_next_batch"] == 0
    assert client.get("/data", params={"group_number": 4}).json()["batch_number"] == 2, "health moved nothing"


def test_health_says_when_a_group_has_collected_every_batch(tmp_path):
    client, clock, _ = make_client(tmp_path, numbered_rows(1000))
    for _ in range(11):
        client.get("/data", params={"group_number": 2})
        clock.now += WINDOW
    (group,) = client.get("/health").json()["groups"]
    assert group["finished"] and group["batch_number"] == 10 and group["seconds_to_next_batch"] == 0
