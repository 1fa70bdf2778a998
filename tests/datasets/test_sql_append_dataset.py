"""Appends to the raw store are idempotent and all-or-nothing, on SQLite and on a real MariaDB."""

import pandas as pd
import pytest
from kedro.io import DatasetError

from covertype.datasets import SQLAppendDataset


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.integration)])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/nested/folder/raw.db"
    return request.getfixturevalue("mysql_url")


def rows(keys: list[str], batch: int = 1) -> pd.DataFrame:
    return pd.DataFrame({
        "Elevation": pd.array([2500 + index for index in range(len(keys))], dtype="Int64"),
        "Soil_Type": pd.array(["C7745"] * len(keys), dtype="string"),
        "batch_number": batch,
        "collected_at": pd.Timestamp("2026-11-23 10:00", tz="UTC"),
        "row_key": pd.array(keys, dtype="string"),
    })  # fmt: skip


def test_saving_the_same_rows_twice_stores_them_once(database_url):
    table = SQLAppendDataset(table_name="raw_covertype", credentials={"con": database_url})
    table.save(rows(["a", "b", "c"]))
    table.save(rows(["a", "b", "c"]))
    table.save(rows(["c", "d"]))
    stored = table.load()
    assert sorted(stored["row_key"]) == ["a", "b", "c", "d"]
    assert stored["collected_at"].iloc[0] == pd.Timestamp("2026-11-23 10:00"), "stored as naive UTC"


def test_a_failing_batch_leaves_nothing_behind(database_url):
    table = SQLAppendDataset(table_name="raw_covertype", credentials={"con": database_url})
    table.save(rows(["a"]))
    broken = rows([f"k{index}" for index in range(5000)])
    broken.loc[4500, "row_key"] = (
        None  # the key is NOT NULL: the database refuses this row, late in the batch
    )
    with pytest.raises(DatasetError, match="row_key"):
        table.save(broken)
    assert table.load()["row_key"].tolist() == ["a"]


def test_loading_a_table_that_was_never_written_says_so(database_url):
    with pytest.raises(DatasetError, match="does not exist yet"):
        SQLAppendDataset(table_name="never_written", credentials={"con": database_url}).load()


def test_rows_without_the_unique_key_are_refused(tmp_path):
    table = SQLAppendDataset(table_name="raw", credentials={"con": f"sqlite:///{tmp_path}/raw.db"})
    with pytest.raises(DatasetError, match="no 'row_key' column"):
        table.save(rows(["a"]).drop(columns="row_key"))
