"""Appends to the raw store are idempotent and all-or-nothing, on SQLite and on a real MariaDB."""

import uuid

import pandas as pd
import pymysql
import pytest
import sqlalchemy as sa
from kedro.io import DatasetError

from covertype.datasets import SQLAppendDataset


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("mysql", marks=pytest.mark.integration),
        pytest.param("mysql-inserts", marks=pytest.mark.integration),
    ]
)
def database_url(request, tmp_path, monkeypatch):
    """SQLite, MariaDB through LOAD DATA, and MariaDB as a server without local files sees it."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/nested/folder/raw.db"
    return mysql_write_path(request, monkeypatch)


@pytest.fixture(params=["mysql", "mysql-inserts"])
def mysql_database_url(request, monkeypatch):
    return mysql_write_path(request, monkeypatch)


def mysql_write_path(request, monkeypatch) -> str:
    if request.param == "mysql-inserts":  # as on MySQL 8, whose local_infile is off by default
        monkeypatch.setattr(SQLAppendDataset, "_server_takes_local_files", lambda self, connection: False)
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


@pytest.mark.integration
def test_a_value_the_column_cannot_hold_refuses_the_batch_instead_of_being_cut(mysql_database_url):
    table = SQLAppendDataset(table_name="raw_covertype", credentials={"con": mysql_database_url})
    table.save(rows(["a"]))
    too_long = rows(["b", "k" * 65])  # the key column holds 64 characters
    with pytest.raises(DatasetError, match="nothing stored"):
        table.save(too_long)
    assert table.load()["row_key"].tolist() == ["a"]


def test_loading_a_table_that_was_never_written_says_so(database_url):
    with pytest.raises(DatasetError, match="does not exist yet"):
        SQLAppendDataset(table_name="never_written", credentials={"con": database_url}).load()


def test_rows_without_the_unique_key_are_refused(tmp_path):
    table = SQLAppendDataset(table_name="raw", credentials={"con": f"sqlite:///{tmp_path}/raw.db"})
    with pytest.raises(DatasetError, match="no 'row_key' column"):
        table.save(rows(["a"]).drop(columns="row_key"))


def stored(table: SQLAppendDataset, *columns: str) -> list[tuple]:
    return sorted(table.load().loc[:, ["row_key", *columns]].itertuples(index=False, name=None))


def test_a_row_served_again_by_a_later_batch_is_counted_not_stored_again(database_url):
    table = SQLAppendDataset(
        table_name="raw_covertype", credentials={"con": database_url}, count_repeats_by="batch_number"
    )
    table.save(rows(["a", "b"], batch=1))
    table.save(rows(["a", "b"], batch=1))  # the same batch again: nothing changes
    table.save(rows(["b", "c"], batch=2))
    table.save(rows(["b", "c"], batch=2))
    table.save(rows(["b"], batch=1))  # an older batch replayed: not a new sighting
    assert stored(table, "batch_number", "times_seen", "last_batch_number") == [
        ("a", 1, 1, 1),
        ("b", 1, 2, 2),
        ("c", 2, 1, 2),
    ]


def test_values_that_need_escaping_and_missing_values_are_stored_as_given(database_url):
    tricky = ["it's", 'say "hi"', "back\\slash", "new\nline", "café ☕", "semi;colon --", "\x00nul", ""]
    frame = pd.DataFrame({
        "raw_record": pd.array([*tricky, None], dtype="string"),
        "count": pd.array([*range(len(tricky)), None], dtype="Int64"),
        "share": [0.5, 1e-05, -2.25, 3.0, 0.1, 7.0, 8.0, 9.0, float("nan")],
        "flag": [True, False] * 4 + [True],
        "collected_at": pd.Timestamp("2026-11-23 10:00", tz="UTC"),
        "row_key": pd.array([f"k{index}" for index in range(len(tricky) + 1)], dtype="string"),
    })  # fmt: skip
    table = SQLAppendDataset(table_name="quarantined_covertype", credentials={"con": database_url})
    table.save(frame)
    back = table.load().sort_values("id").reset_index(drop=True)
    assert back["raw_record"].tolist()[:-1] == tricky and pd.isna(back["raw_record"].iloc[-1])
    assert back["count"].tolist()[:-1] == list(range(len(tricky))) and pd.isna(back["count"].iloc[-1])
    assert back["share"].tolist()[:-1] == frame["share"].tolist()[:-1] and pd.isna(back["share"].iloc[-1])
    assert back["flag"].astype(bool).tolist() == frame["flag"].tolist()


def test_a_table_written_with_other_columns_is_refused_with_what_to_do(database_url):
    SQLAppendDataset(table_name="raw_covertype", credentials={"con": database_url}).save(rows(["a"]))
    counting = SQLAppendDataset(
        table_name="raw_covertype", credentials={"con": database_url}, count_repeats_by="batch_number"
    )
    with pytest.raises(DatasetError, match=r"written by another version\. Drop or rename it"):
        counting.save(rows(["b"]))


@pytest.mark.integration
def test_a_mysql_database_that_does_not_exist_is_created(mariadb):
    name = f"covertype_test_{uuid.uuid4().hex[:12]}"
    try:
        SQLAppendDataset(table_name="raw_covertype", credentials={"con": f"{mariadb}/{name}"}).save(
            rows(["a"])
        )
        with sa.create_engine(f"{mariadb}/{name}").connect() as connection:
            assert connection.exec_driver_sql("SELECT row_key FROM raw_covertype").scalars().all() == ["a"]
    finally:
        connection = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
        connection.cursor().execute(f"DROP DATABASE IF EXISTS {name}")
        connection.close()


@pytest.fixture
def unprivileged_user(mariadb):
    """A MariaDB user who may connect but not create a database: its URL without a database."""
    name = f"covertype_ro_{uuid.uuid4().hex[:8]}"
    connection = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    try:
        connection.cursor().execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY 'secret'")
        yield f"mysql+pymysql://{name}:secret@127.0.0.1:3306"
    finally:
        connection.cursor().execute(f"DROP USER IF EXISTS '{name}'@'%'")
        connection.close()


@pytest.mark.integration
def test_a_database_the_user_may_not_create_fails_with_the_command_to_create_it(unprivileged_user):
    url = f"{unprivileged_user}/covertype_not_created"
    with pytest.raises(DatasetError, match=r"may not create it .* Create it: mysql -h 127\.0\.0\.1 -u root"):
        SQLAppendDataset(table_name="raw_covertype", credentials={"con": url}).save(rows(["a"]))
