"""The views on PostgreSQL, on psycopg2 (SQLAlchemy's driver here; only this module and
``postgres_rebuild`` import it, which the layer contract in pyproject.toml holds).

What it adds to the shared reader and writer: how to connect (``connect``: a timeout, the
schema as search path, errors that name the server), what PostgreSQL does differently (a
set of keys as one array value, the as-of query as ``DISTINCT ON``), and the bulk write:
history rows go in with COPY, task rows with COPY into a temporary table merged by one
``INSERT … ON CONFLICT``, while the batch holds the views' advisory lock shared (a
rebuild's swap takes it exclusively, so no batch is half-way through a swap).
"""

from __future__ import annotations

import io
import typing
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras
from psycopg2 import sql
from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Connection,
    Double,
    Engine,
    Insert,
    Integer,
    Select,
    Subquery,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    create_engine,
    func,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool
from sqlalchemy.types import NullType

from ledger.domain.search import Scalar
from ledger.projections import bulk
from ledger.projections.reader import SqlViewReader
from ledger.projections.schema import task_event, task_meta
from ledger.projections.sql import Database, precedence
from ledger.projections.sqltypes import JsonValue, Uuid, json_text
from ledger.projections.store import Changes, ViewsNotCreated, ViewStoreUnavailable
from ledger.projections.writer import SqlViewWriter

__all__ = ["PostgresDatabase", "PostgresViewWriter", "connect", "postgres_reader", "server", "views_lock_name"]

COPY_TEXT = bulk.Encoding(dump_json=json_text, dump_time=lambda value: value.isoformat(), dump_uuid=str,
                     dump_bool=lambda value: value)  # fmt: skip
"""Values as COPY's text format takes them."""

APPLICATION_NAME = "task-ledger"
"""How the ledger's connections show in ``pg_stat_activity``."""


def views_lock_name(schema: str) -> str:
    """The advisory lock that guards writes to the views in ``schema``."""
    return f"ledger-views:{schema}"


def server(dsn: str) -> str:
    """host:port/dbname of ``dsn`` (never its password), to name it in messages."""
    try:
        where = psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError:
        return "(a connection string libpq cannot parse)"
    return f"{where.get('host', 'localhost')}:{where.get('port', 5432)}/{where.get('dbname', '')}"


def connect(dsn: str, schema: str, timeout: int, *, readonly: bool = False) -> psycopg2.extensions.connection:
    """THE way to a PostgreSQL connection: its search path is ``schema``, jsonb arrives as
    its text; ``ViewStoreUnavailable`` naming the server when it cannot be reached (or
    drops us before the connection is ready)."""
    try:
        conn = psycopg2.connect(dsn, connect_timeout=timeout, application_name=APPLICATION_NAME)
        psycopg2.extras.register_default_jsonb(conn, loads=str)
        if readonly:
            conn.set_session(readonly=True)
        with conn, conn.cursor() as cur:
            cur.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
        raise ViewStoreUnavailable(f"PostgreSQL at {server(dsn)} is not reachable: {exc}".strip()) from exc
    return conn


_LIKE_ESCAPES = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})


def _array_literal(values: Iterable[str]) -> str:
    """``{"a","b"}``: a set of keys as ONE array value, which PostgreSQL parses ~10x faster
    than thousands of bound elements (the planner's reads run once per batch)."""
    quoted = [value.replace("\\", "\\\\").replace('"', '\\"') for value in values]
    return "{" + ",".join([f'"{value}"' for value in quoted]) + "}"


class PostgresDatabase(Database):
    """The views in one schema of one PostgreSQL database (so tests and rebuilds get their own set)."""

    byte_order_collation = "C"

    def __init__(self, dsn: str, schema: str, *, connect_timeout: int = 10, readonly: bool = False) -> None:
        super().__init__()
        self.dsn, self.schema, self.timeout, self.readonly = dsn, schema, connect_timeout, readonly

    @property
    def where(self) -> str:
        return f"PostgreSQL schema {self.schema!r} at {server(self.dsn)}"

    def _create_engine(self) -> Engine:
        return create_engine(
            "postgresql+psycopg2://",
            creator=lambda: connect(self.dsn, self.schema, self.timeout, readonly=self.readonly),
            poolclass=QueuePool, pool_size=1, max_overflow=0,
            isolation_level="AUTOCOMMIT" if self.readonly else "READ COMMITTED",
            # an UPDATE with many parameter sets (each batch's offsets, one per partition) in
            # one round trip (psycopg2's execute_batch), not one each; INSERTs are one anyway
            executemany_mode="values_plus_batch",
        )  # fmt: skip

    def _translate(self, exc: DBAPIError) -> Exception | None:
        if isinstance(exc.orig, psycopg2.errors.UndefinedTable):  # no schema, or no table
            return ViewsNotCreated(self.where)
        if isinstance(exc.orig, psycopg2.OperationalError | psycopg2.InterfaceError) or exc.connection_invalidated:
            # whether a write committed is then unknown: callers re-read the stored offsets
            return ViewStoreUnavailable(f"PostgreSQL connection lost ({self.schema}): {str(exc.orig).strip()}")
        return None

    def members(self, column: ColumnElement[Any], values: Collection[str]) -> ColumnElement[bool]:
        """An untyped literal cast to the array type: PostgreSQL folds it into a constant
        once (a text value cast at run time is parsed again wherever it is evaluated)."""
        element = postgresql.UUID() if isinstance(column.type, Uuid) else Text()
        return column == any_(cast(bindparam(None, _array_literal(values), type_=NullType()), ARRAY(element)))

    def epoch_seconds(self, column: ColumnElement[Any]) -> ColumnElement[float]:
        return cast(func.extract("epoch", column), Double)

    def contains(self, document: ColumnElement[Any], term: str) -> ColumnElement[bool]:
        """``LIKE '%term%'`` (LIKE's own escape, the backslash, before ``%``, ``_`` and itself):
        the trigram index hands over candidates, LIKE checks them exactly."""
        return document.like("%" + term.translate(_LIKE_ESCAPES) + "%")

    def kwarg_equals(self, key: str, value: Scalar) -> ColumnElement[bool]:
        """Containment of ``{key: value}``, which the kwargs GIN index serves; for a scalar
        under a key it is jsonb equality."""
        return task_meta.c.kwargs.op("@>")(bindparam(None, {key: value}, type_=JsonValue))

    def floor(self, value: ColumnElement[float]) -> ColumnElement[int]:
        return cast(func.floor(value), Integer)

    def nearest_ranks(self, values: Subquery, shares: Sequence[int]) -> Select[Any]:
        """``percentile_disc``: the first value whose cumulative share reaches the
        percentile, which is the nearest-rank rule (each k/n compared in doubles cannot
        cross a share of two digits for n below 10^14); one sort per bucket, in C."""
        v = values.c
        picks = [func.percentile_disc(share / 100).within_group(v.value) for share in shares]
        return select(v.bucket, *picks).group_by(v.bucket)

    def whole_seconds(self, column: ColumnElement[Any]) -> ColumnElement[int]:
        """``date_part`` (a double: exact to well under a µs for this century's seconds,
        and much cheaper per row than ``extract``'s numeric), floored."""
        return cast(func.floor(func.date_part("epoch", column)), BigInteger)

    def top_statuses_as_of(self, at: ColumnElement[Any]) -> Select[Any]:
        """One ``DISTINCT ON`` per task, task_id DESC as well: a backward scan of the rank
        index then yields (task_id, attempt) presorted, and only each group's few events are
        sorted further (~1 µs an event by then, on two cores)."""
        e = task_event.c
        return (
            select(e.task_id, e.status).ext(postgresql.distinct_on(e.task_id))
            .where(e.occurred_at <= at, e.status.is_not(None))
            .order_by(e.task_id.desc(), e.attempt.desc(), precedence(e.status).desc(), e.occurred_at.desc(),
                      e.event_id.desc())
        )  # fmt: skip

    @contextmanager
    def index_lookups(self, conn: Connection) -> Iterator[None]:
        # As-of: for instants past the first few percent of the history the planner prefers
        # a sequential scan and a full sort (1.1 s at 500k of 1M events, against 0.57 s by
        # the index): it does not cost the incremental sort of tiny groups well.
        # Workflow: it estimates the recursive step at one key, so when a big group is a
        # large share of the table it scans the table once PER key (25 s for a 10,000-task
        # group among 15,000 rows, against 0.1 s by the indexes).
        conn.exec_driver_sql("SET enable_seqscan = off")
        try:
            yield
        finally:
            conn.exec_driver_sql("RESET enable_seqscan")


_MERGED = ("task_meta", "periodic_task_meta")
"""The view tables a batch upserts through a staging table (``_merge``)."""
_BATCH_START = """
SELECT pg_advisory_xact_lock_shared(hashtext(%(lock)s));
{staging}
INSERT INTO projection_offsets (projection, topic, partition, next_offset)
SELECT %(projection)s, %(topic)s, p, 0 FROM unnest(%(partitions)s::integer[]) AS p ON CONFLICT DO NOTHING;
SELECT partition, next_offset FROM projection_offsets
WHERE projection = %(projection)s AND topic = %(topic)s AND partition = ANY(%(partitions)s::integer[])
ORDER BY partition FOR UPDATE
"""

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_field(value: Any) -> str:
    """One value in COPY's text format. The membership tests run in C and nearly always
    fail (only payloads with escapes or tracebacks need the translation)."""
    if value is None:
        return "\\N"
    text = value if type(value) is str else str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.translate(_COPY_ESCAPES)
    return text


def _copy(cur: psycopg2.extensions.cursor, statement: str, rows: Iterable[Sequence[Any]]) -> None:
    """Run ``statement`` (a ``COPY … FROM STDIN``, ``_copy_into``) with ``rows`` as its
    data; nothing is sent when there are none."""
    field, join = _copy_field, "\t".join
    text = "".join([join([field(v) for v in row]) + "\n" for row in rows])
    if text:
        cur.copy_expert(statement, io.StringIO(text))


def _copy_into(table: str, columns: Sequence[str]) -> sql.Composable:
    names = sql.SQL(", ").join(sql.Identifier(n) for n in columns)
    return sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), names)


def _upsert_from(table: str, staging: str, columns: Sequence[str]) -> sql.Composable:
    names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    updates = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in columns[1:])
    return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO UPDATE SET {}").format(
        sql.Identifier(table), names, names, sql.Identifier(staging), sql.Identifier(columns[0]), updates)


def _quoted(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


_SECONDARY_INDEXES = """
SELECT i.indexname, i.indexdef FROM pg_indexes i
WHERE i.schemaname = %s AND i.tablename IN ('task_meta', 'task_event') AND i.indexname <> 'task_event_task_idx'
  AND i.indexname NOT IN (SELECT c.conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
                          WHERE n.nspname = %s)
ORDER BY i.indexname
"""
_INDEX_BUILD_MEMORY = "256MB"
"""Each index of a bulk load sorted in memory (a million rows' keys fit), not on disk."""
_INDEX_BUILDERS = 2
"""Indexes of a bulk load built at once: a GIN build runs on one core (PostgreSQL's parallel
maintenance workers build only B-trees); 200,000 events' indexes took 5.3 s one at a time,
4.0 s two at a time, on two cores."""


class PostgresViewWriter(SqlViewWriter):
    """Writes the views in ``schema`` (created by ``migrate``)."""

    database: PostgresDatabase

    def __init__(self, dsn: str, schema: str = "ledger", *, connect_timeout: int = 10) -> None:
        super().__init__(PostgresDatabase(dsn, schema, connect_timeout=connect_timeout))
        self._texts: dict[str, str] = {}

    @property
    def dsn(self) -> str:
        return self.database.dsn

    @property
    def schema(self) -> str:
        return self.database.schema

    @contextmanager
    def _migration(self) -> Iterator[tuple[Connection, str | None]]:
        with self.database.transaction() as conn:
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"ledger-migrate:{self.schema}",))
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {_quoted(conn, self.schema)}")
            yield conn, self.schema

    def _insert(self, table: Table) -> Insert:
        return postgresql.insert(table)

    def _lock_offsets(self, conn: Connection, changes: Changes) -> dict[int, int]:
        """What a batch does first, in one round trip (it was five; at a steady 1,000
        events/s a batch is ~20 events, and its round trips were most of its time): the
        views lock, shared (projectors do not block each other; a rebuild's swap takes it
        exclusively); the staging tables ``_merge`` copies into (kept by the session,
        emptied by each commit: created by a connection's first batch); the offset rows
        claimed and locked."""
        cur = typing.cast(psycopg2.extensions.cursor, conn.connection.cursor())
        cur.execute(self._composed(cur, "batch start", self._batch_start), {
            "lock": views_lock_name(self.schema), "projection": changes.projection, "topic": changes.topic,
            "partitions": sorted(changes.offsets),
        })  # fmt: skip
        return dict(cur.fetchall())

    def _batch_start(self) -> sql.Composable:
        staging = [
            sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS;").format(
                sql.Identifier(f"staging_{table}"), sql.Identifier(self.schema, table))
            for table in _MERGED
        ]  # fmt: skip
        return sql.SQL(_BATCH_START).format(staging=sql.SQL(" ").join(staging))

    def _composed(self, cur: psycopg2.extensions.cursor, key: str, statement: Callable[[], sql.Composable]) -> str:
        """``statement`` as text, composed once per writer: composing every statement of a
        batch anew (each column name quoted) cost ~1 ms a batch."""
        text = self._texts.get(key)
        if text is None:
            text = self._texts[key] = statement().as_string(cur)
        return text

    def _write_rows(self, conn: Connection, changes: Changes) -> None:
        cur = typing.cast(psycopg2.extensions.cursor, conn.connection.cursor())
        self._copy_rows(cur, "task_event", bulk.TASK_EVENT_COLUMNS,
                        (bulk.task_event_values(r, COPY_TEXT) for r in changes.task_history))  # fmt: skip
        self._copy_rows(cur, "periodic_task_event", bulk.PERIODIC_EVENT_COLUMNS,
                        (bulk.periodic_event_values(r, COPY_TEXT) for r in changes.periodic_history))  # fmt: skip
        self._merge(cur, "task_meta", bulk.TASK_COLUMNS, [bulk.task_values(s, COPY_TEXT) for s in changes.tasks])
        periodic = [bulk.periodic_values(s, COPY_TEXT) for s in changes.periodic]
        self._merge(cur, "periodic_task_meta", bulk.PERIODIC_COLUMNS, periodic)

    def _merge(self, cur: psycopg2.extensions.cursor, table: str, columns: Sequence[str], rows: list[Any]) -> None:
        """COPY into the temporary table like ``table`` (``_lock_offsets`` made sure of it),
        then one upsert keyed on the first column. The commit empties the staging table
        (``ON COMMIT DELETE ROWS``, which keeps its file: a TRUNCATE here gave it a new one,
        a catalog write, every batch)."""
        if not rows:
            return
        staging = f"staging_{table}"
        self._copy_rows(cur, staging, columns, rows)
        cur.execute(self._composed(cur, f"merge {table}", lambda: _upsert_from(table, staging, columns)))

    def _copy_rows(self, cur: psycopg2.extensions.cursor, table: str, columns: Sequence[str],
                   rows: Iterable[Sequence[Any]]) -> None:  # fmt: skip
        """COPY ``rows`` into ``table`` (of the search path: the views, or a staging table)."""
        _copy(cur, self._composed(cur, f"copy {table}", lambda: _copy_into(table, columns)), rows)

    @contextmanager
    def bulk_loading(self) -> Iterator[None]:
        """Drops the secondary indexes of ``task_meta`` and ``task_event`` but the one the
        planner reads a task's history by (the keys stay: they keep the load honest), and
        creates them again from their own definitions at the end, two at a time."""
        with self.database.transaction() as conn:
            dropped = list(conn.exec_driver_sql(_SECONDARY_INDEXES, (self.schema, self.schema)))
            for name, _ in dropped:
                conn.exec_driver_sql(f"DROP INDEX {_quoted(conn, self.schema)}.{_quoted(conn, name)}")
        yield
        with ThreadPoolExecutor(_INDEX_BUILDERS, thread_name_prefix="ledger-index") as builders:
            list(builders.map(self._build_index, [definition for _, definition in dropped]))
        with self.database.transaction() as conn:
            conn.exec_driver_sql("ANALYZE task_meta, task_event")

    def _build_index(self, definition: str) -> None:
        """One index of a bulk load, on a connection of its own: the builds run side by side
        (a GIN build uses one core), each with the memory to sort in."""
        with closing(connect(self.dsn, self.schema, self.database.timeout)) as conn, conn, conn.cursor() as cur:
            cur.execute(f"SET LOCAL maintenance_work_mem = '{_INDEX_BUILD_MEMORY}'")
            cur.execute(definition)  # no parameters: a definition's "%" stays as it is

    def drop(self) -> None:
        with self.database.transaction() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {_quoted(conn, self.schema)} CASCADE")
        self.close()


def postgres_reader(dsn: str, schema: str = "ledger", *, connect_timeout: int = 10) -> SqlViewReader:
    """A reader of the views in ``schema``, on its own read-only connection."""
    return SqlViewReader(PostgresDatabase(dsn, schema, connect_timeout=connect_timeout, readonly=True))
