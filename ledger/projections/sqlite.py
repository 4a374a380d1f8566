"""The views in one SQLite file, the zero-setup default (WAL mode, so readers never block
the projector).

What it adds to the shared reader and writer: how the file is opened (``sqlite_files``:
readers never create it, and notice when a rebuild replaced it), what SQLite does
differently (a set of keys as one JSON array), and the bulk write: executemany inside
``BEGIN IMMEDIATE``. A writer holds the ``WriterLock`` from its first batch until
``close()``, so a projector and a rebuild (which replaces the file) never both write.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Insert,
    Integer,
    Select,
    Table,
    and_,
    cast,
    create_engine,
    func,
    literal,
    literal_column,
    select,
    table,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool

from ledger.domain.search import Scalar
from ledger.projections import bulk, migrations
from ledger.projections.reader import SqlViewReader
from ledger.projections.schema import task_meta
from ledger.projections.sql import Database
from ledger.projections.sqlite_files import FileIdentity, WriterLock, connect_views, file_identity
from ledger.projections.sqltypes import json_text, utc_text
from ledger.projections.store import Changes, ViewsNotCreated, ViewStoreUnavailable
from ledger.projections.writer import SqlViewWriter

__all__ = ["SqliteDatabase", "SqliteViewWriter", "sqlite_reader"]

EXECUTEMANY = bulk.Encoding(dump_json=json_text, dump_time=utc_text, dump_uuid=str, dump_bool=int)
"""Values as the views file holds them (``sqltypes``' SQLite side)."""
_SEARCH = table("task_search")
"""The FTS5 table of migration 0007 (not in ``schema``: SQLAlchemy cannot declare it)."""


class SqliteDatabase(Database):
    """The views file at ``path``, reopened when a rebuild replaced it (``switched`` tells
    a writer so)."""

    byte_order_collation = "BINARY"
    begin_statement = "BEGIN IMMEDIATE"  # the write lock now, not at the first write (connections autocommit)

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        super().__init__()
        self.path, self.readonly = path, readonly
        self.creating = False
        """Whether a connection may create the file (a writer, while it migrates)."""
        self.switched = False
        self._identity: FileIdentity = None

    @property
    def where(self) -> str:
        return str(self.path)

    @property
    def engine(self) -> Engine:
        if self._engine is not None and file_identity(self.path) != self._identity:
            self.dispose()
            self.switched = True
        return super().engine

    def _create_engine(self) -> Engine:
        return create_engine("sqlite://", creator=self._connect, poolclass=QueuePool, pool_size=1, max_overflow=0,
                             isolation_level="AUTOCOMMIT")  # fmt: skip

    def _connect(self) -> sqlite3.Connection:
        identity = file_identity(self.path)  # before connecting: a swap in between reads as a switch
        conn = connect_views(self.path, create=self.creating)
        if self.readonly:
            conn.execute("PRAGMA query_only = ON")  # time travel can never write to the views
        self._identity = identity if identity is not None else file_identity(self.path)
        return conn

    def _translate(self, exc: DBAPIError) -> Exception | None:
        if "no such table" in str(exc.orig):
            return ViewsNotCreated(self.where)
        return None

    def members(self, column: ColumnElement[Any], values: Collection[str]) -> ColumnElement[bool]:
        keys = func.json_each(literal(json.dumps(list(values)))).table_valued("value")
        return column.in_(select(keys.c.value))

    def contains(self, document: ColumnElement[Any], term: str) -> ColumnElement[bool]:
        return func.instr(document, term) > 0

    def text_candidates(self, terms: Sequence[str]) -> ColumnElement[bool] | None:
        """The rows the FTS5 trigram table matches (each term quoted as one phrase, ``"``
        doubled; trigram phrases are substrings, checked again by ``contains``)."""
        phrases = " ".join('"' + term.replace('"', '""') + '"' for term in terms)
        candidates: Select[Any] = select(literal_column("rowid")).select_from(_SEARCH).where(
            literal_column("task_search").op("MATCH")(phrases))  # fmt: skip
        return literal_column("task_meta.rowid").in_(candidates)

    def kwarg_equals(self, key: str, value: Scalar) -> ColumnElement[bool]:
        """By the JSON type at ``$."key"`` and the value there: SQLite reads true as 1, so
        the type must match as well as the value."""
        path = f'$."{key}"'  # a key is an identifier (``domain.search.check_kwarg``)
        kind = func.json_type(task_meta.c.kwargs, path)
        if value is None or isinstance(value, bool):
            return kind == {None: "null", True: "true", False: "false"}[value]
        kinds = ("text",) if isinstance(value, str) else ("integer", "real")
        return and_(kind.in_(kinds), func.json_extract(task_meta.c.kwargs, path) == value)

    def epoch_seconds(self, column: ColumnElement[Any]) -> ColumnElement[float]:
        """From the stored UTC ISO text: julianday (every SQLite has it; ``unixepoch`` with
        fractions needs 3.42), at about 10 µs of precision, enough for trend buckets."""
        return (func.julianday(column) - 2440587.5) * 86400.0

    def whole_seconds(self, column: ColumnElement[Any]) -> ColumnElement[int]:
        """The stored text's first 19 characters (``YYYY-MM-DDTHH:MM:SS``, always UTC):
        the fraction is cut, not rounded as SQLite's date functions would round it."""
        return cast(func.strftime("%s", func.substr(column, 1, 19)), Integer)


class SqliteViewWriter(SqlViewWriter):
    """Writes the views file at ``path`` (created by ``migrate``)."""

    database: SqliteDatabase

    def __init__(self, path: Path | str) -> None:
        super().__init__(SqliteDatabase(Path(path)))
        self.path = Path(path)
        self.writer_lock = WriterLock(self.path)

    def disconnect(self) -> None:
        """Close the connection but keep the writer lock (a rebuild's swap needs both)."""
        self.database.dispose()

    def close(self) -> None:
        self.disconnect()
        self.database.switched = False
        self.writer_lock.release()

    def migrate(self, target: str = "head") -> list[str]:
        """Under the writer lock only while migrating: a store that migrates, then only
        reads (a server, a test), must not keep projectors out."""
        try:
            with self.database.reading() as conn:
                if not migrations.pending(conn):
                    return []  # up to date: no write, so no writer lock (a rebuild may hold it)
        except ViewsNotCreated:
            pass
        return super().migrate(target)

    @contextmanager
    def _migration(self) -> Iterator[tuple[Connection, str | None]]:
        held = self.writer_lock.held
        self.writer_lock.acquire()
        self.database.creating = True
        try:
            with self.database.transaction() as conn:
                yield conn, None
        finally:
            self.database.creating = False
            if not held:
                self.writer_lock.release()

    def write(self, changes: Changes) -> None:
        self.writer_lock.acquire()
        self.database.engine  # noqa: B018  (notices a replaced file)
        if self.database.switched:  # the batch was planned (partly) on the replaced file
            self.database.switched = False
            raise ViewStoreUnavailable(f"the views {self.path} were replaced (a rebuild): reading them again")
        super().write(changes)

    def _insert(self, table: Table) -> Insert:
        return sqlite.insert(table)

    def _write_rows(self, conn: Connection, changes: Changes) -> None:
        _insert_many(conn, "INSERT", "task_event", bulk.TASK_EVENT_COLUMNS,
                     [bulk.task_event_values(r, EXECUTEMANY) for r in changes.task_history])  # fmt: skip
        _insert_many(conn, "INSERT", "periodic_task_event", bulk.PERIODIC_EVENT_COLUMNS,
                     [bulk.periodic_event_values(r, EXECUTEMANY) for r in changes.periodic_history])  # fmt: skip
        # an upsert, not INSERT OR REPLACE: the search triggers see an update (REPLACE's
        # implicit delete fires no trigger), and the row keeps its rowid, the FTS5 key
        _insert_many(conn, "INSERT", "task_meta", bulk.TASK_COLUMNS,
                     [bulk.task_values(s, EXECUTEMANY) for s in changes.tasks], upsert=True)  # fmt: skip
        _insert_many(conn, "INSERT OR REPLACE", "periodic_task_meta", bulk.PERIODIC_COLUMNS,
                     [bulk.periodic_values(s, EXECUTEMANY) for s in changes.periodic])  # fmt: skip

    def drop(self) -> None:
        self.close()
        for suffix in ("", "-wal", "-shm", ".lock"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)


def _insert_many(conn: Connection, verb: str, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]],
                 *, upsert: bool = False) -> None:  # fmt: skip
    """``upsert``: rows whose key (the first column) exists update it in place."""
    if rows:
        names = ", ".join(f'"{c}"' for c in columns)
        statement = f"{verb} INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"
        if upsert:
            updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns[1:])
            statement += f' ON CONFLICT ("{columns[0]}") DO UPDATE SET {updates}'
        conn.exec_driver_sql(statement, rows)


def sqlite_reader(path: Path | str) -> SqlViewReader:
    """A reader of the views file at ``path`` (which must exist with its tables, else
    ``ViewsNotCreated``: a reader that created an empty file would answer "no tasks"
    instead of "wrong path"), on its own query-only connection."""
    return SqlViewReader(SqliteDatabase(Path(path), readonly=True))
