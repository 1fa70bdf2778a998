"""An append-only SQL table with idempotent, transactional writes (SQLite, MySQL/MariaDB, PostgreSQL)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from kedro.io import AbstractDataset, DatasetError
from sqlalchemy.dialects import mysql, postgresql, sqlite

logger = logging.getLogger(__name__)

#: Rows per INSERT statement: large enough to be fast, small enough for MySQL's max_allowed_packet.
CHUNK_ROWS = 2_000


def _column_type(series: pd.Series) -> sa.types.TypeEngine:
    if pd.api.types.is_bool_dtype(series):
        return sa.Boolean()
    if pd.api.types.is_integer_dtype(series):
        return sa.BigInteger()
    if pd.api.types.is_float_dtype(series):
        return sa.Float()
    if pd.api.types.is_datetime64_any_dtype(series):
        return sa.DateTime()
    return sa.Text()


def _insert_ignoring_duplicates(table: sa.Table, dialect: str, unique_key: str) -> sa.Insert:
    """An INSERT that skips rows whose unique key is already stored, and fails on any other error."""
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=[unique_key])
    if dialect in {"mysql", "mariadb"}:
        # Not INSERT IGNORE: that would also turn truncation and type errors into warnings.
        return mysql.insert(table).on_duplicate_key_update({unique_key: table.c[unique_key]})
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=[unique_key])
    raise DatasetError(f"SQLAppendDataset does not support the {dialect} dialect")


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain Python values the DB drivers accept: None for missing, naive UTC datetimes."""
    plain = frame.copy()
    for column in plain.columns:
        if isinstance(plain[column].dtype, pd.DatetimeTZDtype):
            plain[column] = plain[column].dt.tz_convert("UTC").dt.tz_localize(None)
    plain = plain.astype(object).where(plain.notna(), None)
    return [
        {
            key: (value.to_pydatetime() if isinstance(value, pd.Timestamp) else value)
            for key, value in row.items()
        }
        for row in plain.to_dict("records")
    ]


class SQLAppendDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """A SQL table that only grows: saving appends the rows whose ``unique_key`` is new.

    The table is created on the first save from the frame's columns, with a unique index on
    ``unique_key``. A save is one transaction: either the whole batch is stored or none of it,
    and saving the same rows again adds nothing.

    Example catalog entry::

        raw_covertype:
          type: covertype.datasets.SQLAppendDataset
          table_name: raw_covertype
          credentials: raw_store   # {con: sqlite:///data/01_raw/covertype.db}
    """

    def __init__(
        self,
        *,
        table_name: str,
        credentials: dict[str, Any],
        unique_key: str = "row_key",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if "con" not in (credentials or {}):
            raise DatasetError(f"{table_name}: credentials need a 'con' SQLAlchemy URL")
        self._table_name = table_name
        self._url = sa.engine.make_url(credentials["con"])
        self._unique_key = unique_key
        self._engine: sa.Engine | None = None
        self.metadata = metadata

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            if self._url.get_backend_name() == "sqlite" and self._url.database not in (None, "", ":memory:"):
                Path(self._url.database).parent.mkdir(parents=True, exist_ok=True)
            self._engine = sa.create_engine(self._url, pool_pre_ping=True)
        return self._engine

    def _describe(self) -> dict[str, Any]:
        return {"table_name": self._table_name, "url": self._url.render_as_string(hide_password=True)}

    def _exists(self) -> bool:
        return sa.inspect(self.engine).has_table(self._table_name)

    def load(self) -> pd.DataFrame:
        if not self._exists():
            raise DatasetError(f"Table {self._table_name} does not exist yet in {self._describe()['url']}")
        with self.engine.connect() as connection:
            return pd.read_sql_table(self._table_name, connection)

    def _table_for(self, frame: pd.DataFrame) -> sa.Table:
        if self._unique_key not in frame.columns:
            raise DatasetError(f"{self._table_name}: the rows have no '{self._unique_key}' column")
        columns = [
            sa.Column(
                name,
                sa.String(64) if name == self._unique_key else _column_type(frame[name]),
                nullable=name != self._unique_key,
            )
            for name in frame.columns
        ]
        return sa.Table(
            self._table_name,
            sa.MetaData(),
            sa.Column(
                "id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                primary_key=True,
                autoincrement=True,
            ),
            *columns,
            sa.UniqueConstraint(self._unique_key, name=f"uq_{self._table_name}_{self._unique_key}"),
        )

    def save(self, data: pd.DataFrame) -> None:
        table = self._table_for(data)
        table.create(self.engine, checkfirst=True)
        statement = _insert_ignoring_duplicates(table, self.engine.dialect.name, self._unique_key)
        records = _records(data)
        count_rows = sa.select(sa.func.count()).select_from(table)
        with self.engine.begin() as connection:
            before = connection.execute(count_rows).scalar_one()
            for start in range(0, len(records), CHUNK_ROWS):
                connection.execute(statement, records[start : start + CHUNK_ROWS])
            inserted = connection.execute(count_rows).scalar_one() - before
        logger.info(
            "%s: stored %d new rows of %d (%d already present)",
            self._table_name,
            inserted,
            len(records),
            len(records) - inserted,
        )
