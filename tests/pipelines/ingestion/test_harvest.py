"""Harvest: draw the current batch again and again within its window, keep each distinct row once."""

import json
import random
import threading

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from covertype.datasets import BatchAPIDataset, Draw
from covertype.pipelines.ingestion.nodes import CallCount, estimate_batch_rows, harvest_batch
from tests.conftest import PROJECT_ROOT
from tests.http_stub import serve

GOOD = ["2596", "51", "3", "258", "0", "510", "221", "232", "148", "6279", "Rawah", "C7745", "5"]
ON = {"enabled": True, "pause_seconds": 0.0}


def record(number: int) -> list[str]:
    return [str(2000 + number), *GOOD[1:]]


class ScriptedDraws:
    """Draws that answer a script of (batch number or None, record numbers); a call takes 1 s."""

    def __init__(self, script: list[tuple[int | None, list[int]]]) -> None:
        self.script, self.calls, self.pauses = list(script), 0, []

    @property
    def elapsed_seconds(self) -> float:
        return float(self.calls)

    def draw(self, pause_seconds: float = 0.0) -> Draw:
        self.pauses.append(pause_seconds)
        batch, numbers = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        return Draw(1, batch, [record(n) for n in numbers], pd.Timestamp("2026-12-01", tz="UTC"), 1.0)


def test_harvest_off_makes_one_call_as_before():
    draws = ScriptedDraws([(1, [1, 2, 3]), (1, [4, 5, 6])])
    batch, report = harvest_batch(draws, {"enabled": False})
    assert draws.calls == 1 and batch["Elevation"].tolist() == [2001, 2002, 2003]
    assert report["stopped_because"] == "harvest off: one call" and report["estimated_coverage"] is None


def test_rows_are_kept_once_and_the_harvest_stops_when_calls_bring_few_new_rows():
    draws = ScriptedDraws([(1, [1, 2, 3, 4]), (1, [3, 4, 5, 6]), (1, [1, 2, 6, 7]), (1, [1, 2, 3, 4])])
    batch, report = harvest_batch(draws, {**ON, "min_new_share": 0.2, "judged_over_calls": 1})
    assert batch["Elevation"].tolist() == [2001, 2002, 2003, 2004, 2005, 2006, 2007]
    assert batch["raw_record"].is_unique and set(batch["batch_number"]) == {1}
    assert report["new_rows_per_call"] == [4, 2, 1, 0] and report["rows_received"] == 16
    assert report["stopped_because"] == "few new rows" and report["distinct_rows"] == 7


def test_the_pause_comes_between_calls_only():
    draws = ScriptedDraws([(1, [1]), (1, [1])])
    harvest_batch(draws, {"enabled": True, "pause_seconds": 2.5})
    assert draws.pauses == [0.0, 2.5]


def test_the_call_budget_caps_the_harvest():
    draws = ScriptedDraws([(1, list(range(n * 10, n * 10 + 10))) for n in range(50)])
    _, report = harvest_batch(draws, {**ON, "max_calls": 5})
    assert draws.calls == 5 and report["stopped_because"] == "call budget spent"


def test_no_call_is_started_that_might_end_after_the_window():
    draws = ScriptedDraws([(1, list(range(n * 10, n * 10 + 10))) for n in range(50)])
    _, report = harvest_batch(draws, {**ON, "window_seconds": 10, "closing_margin_seconds": 2})
    # The 8th call ends at 8 s, the window less its margin: a 9th might end after it.
    assert draws.calls == 8 and report["stopped_because"] == "window closing"


def test_the_completion_answer_stops_at_once_and_keeps_what_was_harvested():
    draws = ScriptedDraws([(10, [1, 2]), (10, [3]), (None, [])])
    batch, report = harvest_batch(draws, ON)
    assert draws.calls == 3 and len(batch) == 3 and report["stopped_because"] == "collection finished"
    # Finished, as the stop says: the rows of this run are the last batch's, stored all the same.
    assert report["collection_finished"] is True


def test_a_completion_answer_first_means_collection_finished():
    batch, report = harvest_batch(ScriptedDraws([(None, [])]), ON)
    assert batch.empty and report["collection_finished"] is True and report["calls"] == 0


def test_a_new_batch_stops_the_harvest_without_mixing_batches():
    draws = ScriptedDraws([(3, [1, 2]), (3, [2, 3]), (4, [7, 8])])
    batch, report = harvest_batch(draws, ON)
    assert set(batch["batch_number"]) == {3} and len(batch) == 3
    assert report["stopped_because"] == "the next batch began"


def test_the_batch_size_is_estimated_from_the_share_of_rows_seen_again():
    # 100 rows; a call of 10 after 50 were seen brings back about 5 of them.
    assert estimate_batch_rows([CallCount(10, 10, 0), CallCount(10, 5, 50)]) == pytest.approx(100)
    assert estimate_batch_rows([CallCount(10, 10, 0)]) is None


@pytest.mark.integration
def test_at_the_course_settings_a_window_is_harvested_to_95_percent_within_40_calls(
    start_batch_api, api_rows
):
    """Our API, the 15,000-row sample: 1,500-row batches served 150 rows per call, as the course does."""
    url = start_batch_api(rows_per_request="course")
    batch, report = harvest_batch(BatchAPIDataset(url=url, group_number=2).load(), ON)
    batch_one = {json.dumps(row) for row in api_rows[:1_500]}
    assert set(batch["raw_record"]) <= batch_one and batch["raw_record"].is_unique
    assert len(batch) >= 0.95 * len(batch_one) and report["calls"] <= 40
    assert report["rows_received"] == 150 * report["calls"]
    assert report["estimated_batch_rows"] == pytest.approx(1_500, rel=0.05)


@pytest.mark.integration
def test_the_completion_answer_of_a_real_api_ends_the_harvest_of_the_last_batch_at_once(start_batch_api):
    url = start_batch_api(min_update_seconds=1.0, rows_per_request="course")
    while httpx.get(f"{url}/data", params={"group_number": 3}).json()["batch_number"] < 10:
        threading.Event().wait(1.05)  # the API's rotation moves on with the clock
    harvest = {**ON, "pause_seconds": 0.1, "min_new_share": 0.0}  # only the API's answer can stop it early
    batch, report = harvest_batch(BatchAPIDataset(url=url, group_number=3).load(), harvest)
    assert report["stopped_because"] == "collection finished" and report["calls"] < 40
    assert set(batch["batch_number"]) == {10} and len(batch) > 0 and report["collection_finished"]
    _, after = harvest_batch(BatchAPIDataset(url=url, group_number=3).load(), harvest)
    assert after["collection_finished"] and after["calls"] == 0


class CourseLikeAPI:
    """A tiny course-like API: every batch is the same rows (its slice-by-group defect), 10% per call."""

    def __init__(self, rows: list[list[str]]) -> None:
        self.rows, self.batch_number, self._draws = rows, 1, random.Random(0)
        self.url = serve(lambda _: (200, self._answer()))

    def _answer(self) -> bytes:
        sample = self._draws.sample(self.rows, len(self.rows) // 10)
        return json.dumps({"group_number": 1, "batch_number": self.batch_number, "data": sample}).encode()


@pytest.mark.integration
def test_with_batches_that_repeat_each_record_is_stored_once_and_counted(
    api_rows, tmp_path, monkeypatch, isolated_summary
):
    api = CourseLikeAPI(api_rows[:100])
    raw_store = f"sqlite:///{tmp_path}/raw.db"
    monkeypatch.setenv("COVERTYPE_RAW_STORE_URL", raw_store)
    params = {"batch_api_url": api.url, "harvest": {**ON, "min_new_share": 0.0, "max_calls": 150}}
    bootstrap_project(PROJECT_ROOT)
    for batch_number in (1, 2):
        api.batch_number = batch_number
        with KedroSession.create(project_path=PROJECT_ROOT, env="local", runtime_params=params) as session:
            session.run(pipeline_names=["ingestion"])
    summary = json.loads((PROJECT_ROOT / "data/08_reporting/ingestion_summary.json").read_text())
    assert summary["batch_number"] == 2 and summary["harvest"]["calls"] == 150
    with sa.create_engine(raw_store).connect() as connection:
        stored = pd.read_sql(
            "SELECT batch_number, times_seen, last_batch_number FROM raw_covertype", connection
        )
    assert len(stored) == summary["rows_distinct"] == 100, "150 calls of 10 rows see all 100"
    assert set(stored.itertuples(index=False, name=None)) == {(1, 2, 2)}
