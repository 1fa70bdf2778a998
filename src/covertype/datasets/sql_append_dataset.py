"""An append-only SQL table with idempotent, transactional writes (SQLite, MySQL/MariaDB, PostgreSQL)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from kedro.io import AbstractDataset, DatasetError
from sqlalchemy.dialects import postgresql, sqlite

logger = logging.getLogger(__name__)

#: Bytes of VALUES per INSERT statement on MySQL: few round trips, far below max_allowed_packet (4 MB+).
STATEMENT_BYTES = 1_000_000
#: MySQL's errors for a database that does not exist: "Unknown database", or "Access denied" to it for
#: a user who may not see it.
MISSING_DATABASE = {1049, 1044}
#: The column counting in how many batches a stored row was served (with ``count_repeats_by``).
TIMES_SEEN = "times_seen"


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


def _naive_utc(frame: pd.DataFrame) -> pd.DataFrame:
    """Timezone-aware columns as naive UTC, as they are stored (SQL DATETIME has no zone)."""
    converted = {
        column: frame[column].dt.tz_convert("UTC").dt.tz_localize(None)
        for column in frame.columns
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype)
    }
    return frame.assign(**converted) if converted else frame


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain Python values the DB drivers accept: None for missing, naive UTC datetimes."""
    plain = _naive_utc(frame)
    plain = plain.astype(object).where(plain.notna(), None)
    return [
        {
            key: (value.to_pydatetime() if isinstance(value, pd.Timestamp) else value)
            for key, value in row.items()
        }
        for row in plain.to_dict("records")
    ]


#: Characters the driver may escape in text; text without them is quoted as it is in any SQL mode.
_NEEDS_ESCAPING = r"[\x00\n\r\x1a'\"\\]"


def _typed_values(series: pd.Series) -> pa.Array | None:
    """A boolean (as 0/1), numeric or datetime column in Arrow; None for text, which each writer quotes."""
    if pd.api.types.is_bool_dtype(series):
        return pa.array(series.astype("Int8"), from_pandas=True)
    if pd.api.types.is_numeric_dtype(series):
        return pa.array(series, from_pandas=True)
    if pd.api.types.is_datetime64_any_dtype(series):
        return pa.array(series.astype("datetime64[us]"), from_pandas=True)
    return None


def _mysql_literals(series: pd.Series, quote_text: Callable[[str], str]) -> pa.Array:
    """One column as MySQL literals, converted in Arrow: NULL for missing, text quoted by the driver.

    Only text with a character the driver escapes goes through ``quote_text`` one value at a time.
    """
    values = _typed_values(series)
    if values is None:
        text = pa.array(series.astype("string"), type=pa.string(), from_pandas=True)
        needs_escaping = pc.fill_null(pc.match_substring_regex(text, _NEEDS_ESCAPING), False)
        quoted = pc.binary_join_element_wise("'", text, "'", "")
        if pc.any(needs_escaping).as_py():
            escaped = [
                quote_text(value) if needed else None
                for value, needed in zip(text.to_pylist(), needs_escaping.to_pylist(), strict=True)
            ]
            quoted = pc.if_else(needs_escaping, pa.array(escaped, type=pa.string()), quoted)
        return pc.fill_null(quoted, "NULL")
    literals = pc.cast(values, pa.string())
    if pa.types.is_timestamp(values.type):
        literals = pc.binary_join_element_wise("'", literals, "'", "")
    return pc.fill_null(literals, "NULL")


def _mysql_value_rows(frame: pd.DataFrame, quote_text: Callable[[str], str]) -> list[str]:
    """Each row as ``(literal, ...)``, ready for a multi-row INSERT."""
    columns = [_mysql_literals(frame[name], quote_text) for name in frame.columns]
    return pc.binary_join_element_wise("(", pc.binary_join_element_wise(*columns, ","), ")", "").to_pylist()


#: LOAD DATA's default text format: its escapes for the characters that would break a field or line.
_LOAD_DATA_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"), ("\x00", "\\0"))


def _load_data_field(series: pd.Series) -> pa.Array:
    """One column as LOAD DATA fields (tab-separated, backslash escapes): ``\\N`` for missing."""
    values = _typed_values(series)
    if values is None:
        values = pa.array(series.astype("string"), type=pa.string(), from_pandas=True)
        for character, escape in _LOAD_DATA_ESCAPES:
            values = pc.replace_substring(values, character, escape)
    return pc.fill_null(pc.cast(values, pa.string()), "\\N")


def _load_data_text(frame: pd.DataFrame) -> bytes:
    """The rows in LOAD DATA's default text format, built column by column in Arrow.

    Each line is joined in Arrow and ends with a newline; the lines lie back to back in the array's
    data buffer, which is the text.
    """
    if frame.empty:
        return b""
    columns = [_load_data_field(frame[name]) for name in frame.columns]
    lines = pc.binary_join_element_wise(pc.binary_join_element_wise(*columns, "\t"), pa.scalar(""), "\n")
    if isinstance(lines, pa.ChunkedArray):  # columns of a concatenated frame come in several chunks
        lines = lines.combine_chunks()
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    return lines.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]


def _statements(head: str, rows: list[str], tail: str) -> Iterator[str]:
    """Multi-row INSERTs of at most about STATEMENT_BYTES each."""
    chunk: list[str] = []
    size = 0
    for row in rows:
        chunk.append(row)
        size += len(row) + 1
        if size >= STATEMENT_BYTES:
            yield head + ",".join(chunk) + tail
            chunk, size = [], 0
    if chunk:
        yield head + ",".join(chunk) + tail


class SQLAppendDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """A SQL table that only grows: saving appends the rows whose ``unique_key`` is new.

    The table is created on the first save from the frame's columns, with a unique index on
    ``unique_key``; a MySQL database that does not exist yet is created first. A save is one
    transaction: either the whole batch is stored or none of it, and saving the same rows again
    adds nothing.

    With ``empty_when_missing``, loading a table not made yet gives an empty frame (no columns)
    instead of an error: for a table an optional step writes.

    With ``count_repeats_by`` (a column of the rows, such as ``batch_number``), a row whose key is
    stored already is counted instead: the table keeps ``times_seen`` and ``last_<column>``, and
    ``times_seen`` grows by one when the row comes back with a greater value of that column (a later
    batch); saving the same batch again changes nothing.

    On MySQL/MariaDB (driver pymysql) the rows are loaded into a session's temporary staging table
    with one ``LOAD DATA LOCAL INFILE`` (text built column by column in Arrow), then moved by one
    ``INSERT ... SELECT ... ON DUPLICATE KEY UPDATE``, which the server checks strictly
    (``make bench-ingest`` compares it with ``DataFrame.to_sql``). A server that refuses local files
    (``local_infile`` off, MySQL 8's default) gets multi-row INSERTs built in Arrow instead.
    Elsewhere the rows go through SQLAlchemy's ``executemany``.

    Example catalog entry::

        raw_covertype:
          type: covertype.datasets.SQLAppendDataset
          table_name: raw_covertype
          credentials: raw_store   # {con: sqlite:///data/01_raw/covertype.db}
          count_repeats_by: batch_number
    """

    def __init__(
        self,
        *,
        table_name: str,
        credentials: dict[str, Any],
        unique_key: str = "row_key",
        count_repeats_by: str | None = None,
        empty_when_missing: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if "con" not in (credentials or {}):
            raise DatasetError(f"{table_name}: credentials need a 'con' SQLAlchemy URL")
        self._table_name = table_name
        self._url = sa.engine.make_url(credentials["con"])
        if self._url.get_backend_name() == "mysql" and self._url.get_driver_name() != "pymysql":
            raise DatasetError(f"{table_name}: MySQL is written through pymysql (mysql+pymysql://...)")
        self._unique_key = unique_key
        self._count_repeats_by = count_repeats_by
        self._empty_when_missing = empty_when_missing
        self._engine: sa.Engine | None = None
        self._local_infile: bool | None = None  # whether the server takes LOAD DATA LOCAL, once asked
        self.metadata = metadata

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            backend = self._url.get_backend_name()
            if backend == "sqlite" and self._url.database not in (None, "", ":memory:"):
                Path(self._url.database).parent.mkdir(parents=True, exist_ok=True)
            connect_args = {}
            if backend == "mysql":
                self._create_mysql_database_if_missing()
                connect_args = {"local_infile": True}  # the client side of LOAD DATA LOCAL INFILE
            self._engine = sa.create_engine(self._url, pool_pre_ping=True, connect_args=connect_args)
        return self._engine

    def _create_mysql_database_if_missing(self) -> None:
        probe = sa.create_engine(self._url)
        try:
            probe.connect().close()
        except sa.exc.OperationalError as error:
            if error.orig.args[0] not in MISSING_DATABASE:
                raise
            self._create_mysql_database()
        finally:
            probe.dispose()

    def _create_mysql_database(self) -> None:
        server = sa.create_engine(self._url.set(database=""))
        database = server.dialect.identifier_preparer.quote(self._url.database)
        try:
            with server.begin() as connection:
                connection.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS {database} CHARACTER SET utf8mb4")
        except sa.exc.DBAPIError as error:
            raise DatasetError(
                f"The database {database} does not exist and {self._url.username} may not create it "
                f"({error.orig}). Create it: mysql -h {self._url.host} -u root -p -e "
                f"'CREATE DATABASE {database} CHARACTER SET utf8mb4'"
            ) from error
        finally:
            server.dispose()
        logger.info("Created the MySQL database %s on %s", database, self._url.host)

    def _describe(self) -> dict[str, Any]:
        return {"table_name": self._table_name, "url": self._url.render_as_string(hide_password=True)}

    def _exists(self) -> bool:
        return sa.inspect(self.engine).has_table(self._table_name)

    def load(self) -> pd.DataFrame:
        if not self._exists() and self._empty_when_missing:
            return pd.DataFrame()
        if not self._exists():
            raise DatasetError(f"Table {self._table_name} does not exist yet in {self._describe()['url']}")
        with self.engine.connect() as connection:
            return pd.read_sql_table(self._table_name, connection)

    @property
    def _last_seen(self) -> str:
        return f"last_{self._count_repeats_by}"

    def _with_counters(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows as stored: with ``times_seen`` = 1 and ``last_<column>`` when repeats are counted."""
        if self._count_repeats_by is None:
            return frame
        if self._count_repeats_by not in frame.columns:
            raise DatasetError(f"{self._table_name}: the rows have no '{self._count_repeats_by}' column")
        return frame.assign(**{TIMES_SEEN: 1, self._last_seen: frame[self._count_repeats_by]})

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

    def _check_columns(self, table: sa.Table) -> None:
        """Refuse to write into a table made for other columns (an older layout), saying what to do."""
        stored = {column["name"] for column in sa.inspect(self.engine).get_columns(self._table_name)}
        if stored != set(table.columns.keys()):
            raise DatasetError(
                f"{self._table_name} in {self._describe()['url']} has the columns {sorted(stored)}, "
                f"not {sorted(table.columns.keys())}: it was written by another version. Drop or "
                "rename it, then ingest again."
            )

    def _upsert(self, table: sa.Table) -> sa.Insert:
        """SQLite's or PostgreSQL's INSERT that skips (or counts) rows whose key is already stored."""
        dialect = self.engine.dialect.name
        if dialect not in {"sqlite", "postgresql"}:
            raise DatasetError(f"SQLAppendDataset does not support the {dialect} dialect")
        insert = (sqlite if dialect == "sqlite" else postgresql).insert(table)
        if self._count_repeats_by is None:
            return insert.on_conflict_do_nothing(index_elements=[self._unique_key])
        incoming, last = insert.excluded[self._count_repeats_by], table.c[self._last_seen]
        later = incoming > last
        return insert.on_conflict_do_update(
            index_elements=[self._unique_key],
            set_={
                TIMES_SEEN: table.c[TIMES_SEEN] + sa.case((later, 1), else_=0),
                self._last_seen: sa.case((later, incoming), else_=last),
            },
        )

    def _mysql_on_duplicate(self, quote: Callable[[str], str], qualify: str | None = None) -> str:
        """MySQL's clause for a stored key: a no-op, or the count (assignments apply left to right).

        Not INSERT IGNORE: that would also turn truncation and type errors into warnings.
        ``qualify``: the table's name, to tell its columns from an INSERT ... SELECT's source.
        """
        prefix = f"{quote(qualify)}." if qualify else ""
        key = prefix + quote(self._unique_key)
        if self._count_repeats_by is None:
            return f" ON DUPLICATE KEY UPDATE {key} = {key}"
        seen, last = prefix + quote(TIMES_SEEN), prefix + quote(self._last_seen)
        incoming = f"VALUES({quote(self._count_repeats_by)})"
        return (
            f" ON DUPLICATE KEY UPDATE {seen} = {seen} + ({incoming} > {last}),"
            f" {last} = GREATEST({last}, {incoming})"
        )

    def _insert_mysql(self, connection: sa.Connection, table: sa.Table, rows: pd.DataFrame) -> None:
        """Multi-row INSERTs, text quoted by pymysql itself (``escape`` knows the server's SQL mode)."""
        quote = connection.dialect.identifier_preparer.quote
        head = f"INSERT INTO {quote(table.name)} ({','.join(map(quote, rows.columns))}) VALUES "
        values = _mysql_value_rows(rows, connection.connection.dbapi_connection.escape)
        for statement in _statements(head, values, self._mysql_on_duplicate(quote)):
            connection.exec_driver_sql(statement)

    def _server_takes_local_files(self, connection: sa.Connection) -> bool:
        if self._local_infile is None:
            self._local_infile = bool(connection.exec_driver_sql("SELECT @@local_infile").scalar_one())
            if not self._local_infile:
                logger.info(
                    "%s: the server refuses LOAD DATA LOCAL; writing multi-row INSERTs", self._url.host
                )
        return self._local_infile

    def _load_mysql(self, connection: sa.Connection, table: sa.Table, rows: pd.DataFrame) -> None:
        """LOAD DATA into a temporary staging table, then one INSERT ... SELECT into the table.

        The staging table accepts anything (every column nullable) and LOAD DATA LOCAL turns bad
        values into warnings, so any warning refuses the batch; the strict INSERT ... SELECT then
        refuses what the table forbids (a missing key). A temporary table lives in this connection
        only and commits nothing; it is Aria (MariaDB) or MyISAM (MySQL), not transactional, as
        nothing in it needs to be.
        """
        quote = connection.dialect.identifier_preparer.quote
        staging = sa.Table(
            f"staging_{table.name}",
            sa.MetaData(),
            *(
                sa.Column(column.name, column.type, nullable=True)
                for column in table.columns
                if column.name in rows
            ),
            prefixes=["TEMPORARY"],
            # Not InnoDB: the staging rows need no transaction nor redo log (measured faster).
            mysql_engine="Aria" if connection.dialect.is_mariadb else "MyISAM",
        )
        names = ",".join(map(quote, rows.columns))
        staging.drop(connection, checkfirst=True)
        staging.create(connection)
        try:
            with tempfile.NamedTemporaryFile(prefix="covertype-load-", suffix=".tsv") as text:
                text.write(_load_data_text(rows))
                text.flush()
                load = f"LOAD DATA LOCAL INFILE %s INTO TABLE {quote(staging.name)} CHARACTER SET utf8mb4"
                connection.exec_driver_sql(f"{load} ({names})", (text.name,))
            warnings = connection.exec_driver_sql("SHOW WARNINGS LIMIT 3").fetchall()
            if warnings:
                raise DatasetError(f"{self._table_name}: the batch was refused, nothing stored: {warnings}")
            connection.exec_driver_sql(
                f"INSERT INTO {quote(table.name)} ({names}) SELECT {names} FROM {quote(staging.name)}"
                + self._mysql_on_duplicate(quote, qualify=table.name)
            )
        finally:
            # A connection the server dropped took its temporary table with it; asking it to drop the
            # table would hide the server's error behind SQLAlchemy's "invalid transaction" one.
            if not connection.invalidated:
                connection.exec_driver_sql(f"DROP TEMPORARY TABLE IF EXISTS {quote(staging.name)}")

    def save(self, data: pd.DataFrame) -> None:
        rows = self._with_counters(data)
        table = self._table_for(rows)
        table.create(self.engine, checkfirst=True)
        self._check_columns(table)
        last_id = sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))
        try:
            with self.engine.begin() as connection:
                before = connection.execute(last_id).scalar_one()
                if self.engine.dialect.name == "mysql" and self._server_takes_local_files(connection):
                    self._load_mysql(connection, table, _naive_utc(rows))
                elif self.engine.dialect.name == "mysql":
                    self._insert_mysql(connection, table, _naive_utc(rows))
                else:
                    records = _records(rows)
                    if records:
                        connection.execute(self._upsert(table), records)
                inserted = connection.execute(
                    sa.select(sa.func.count()).select_from(table).where(table.c.id > before)
                ).scalar_one()
        except sa.exc.DBAPIError as error:
            refused = f"{self._table_name}: the batch was refused, nothing stored"
            raise DatasetError(f"{refused}: {error.orig}") from error
        logger.info(
            "%s: stored %d new rows of %d (%d already present)",
            self._table_name,
            inserted,
            len(rows),
            len(rows) - inserted,
        )
