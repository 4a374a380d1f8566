"""The PostgreSQL view store (psycopg2): the only module that imports psycopg2.

Writes are set-based: history rows go in with COPY, task rows with COPY into a temporary
table merged by one ``INSERT … ON CONFLICT``, and the offsets in the same transaction,
after checking (under a row lock) that they are still the ones the batch was read from.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras
from psycopg2 import sql

from ledger.domain.fold import TaskState
from ledger.domain.periodic import PeriodicState
from ledger.domain.statuses import READY_STATES, TaskStatus
from ledger.projections import migrations
from ledger.projections.columns import (
    PERIODIC_COLUMNS,
    PERIODIC_EVENT_COLUMNS,
    PERIODIC_RUNS_SQL,
    TASK_COLUMNS,
    TASK_EVENT_COLUMNS,
    Dialect,
    history_from_row,
    json_text,
    periodic_event_values,
    periodic_from_row,
    periodic_runs_from_rows,
    periodic_values,
    task_event_values,
    task_from_row,
    task_values,
)
from ledger.projections.store import (
    Changes,
    Cursor,
    HistoryRow,
    RunOutcome,
    StaleOffsets,
    TaskFilter,
    ViewsNotCreated,
    ViewStore,
    ViewStoreUnavailable,
)

psycopg2.extras.register_uuid()  # type: ignore[no-untyped-call]

DIALECT = Dialect(
    dump_json=json_text,
    load_json=json.loads,  # jsonb arrives as its text (``connect``): a JSON string is not mistaken for it
    dump_time=lambda value: value.isoformat(),
    dump_uuid=str,
    dump_bool=lambda value: value,
)


APPLICATION_NAME = "task-ledger"
"""How the ledger's connections show in ``pg_stat_activity``."""


def views_lock_name(schema: str) -> str:
    """The advisory lock that guards writes to the views in ``schema``."""
    return f"ledger-views:{schema}"


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


def _copy_buffer(rows: Iterable[Sequence[Any]]) -> io.StringIO:
    field, join = _copy_field, "\t".join
    buffer = io.StringIO()
    buffer.write("".join([join([field(v) for v in row]) + "\n" for row in rows]))
    buffer.seek(0)
    return buffer


def _columns(names: Sequence[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def server(dsn: str) -> str:
    """host:port/dbname of ``dsn`` (never its password), to name it in messages."""
    try:
        where = psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError:
        return "(a connection string libpq cannot parse)"
    return f"{where.get('host', 'localhost')}:{where.get('port', 5432)}/{where.get('dbname', '')}"


def connect(dsn: str, schema: str, timeout: int, *, readonly: bool = False) -> psycopg2.extensions.connection:
    """A connection whose search path is ``schema``; ``ViewStoreUnavailable`` naming the
    server when it cannot be reached (or drops us before the connection is ready)."""
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


@contextmanager
def views_created(dsn: str, schema: str) -> Iterator[None]:
    """A query on views nobody created (no schema, or no table: PostgreSQL says
    ``UndefinedTable`` for both) raises ``ViewsNotCreated`` naming the schema and server."""
    try:
        yield
    except psycopg2.errors.UndefinedTable as exc:
        raise ViewsNotCreated(f"PostgreSQL schema {schema!r} at {server(dsn)}") from exc


class LazyConnection:
    """One connection to ``schema``, opened on first use and again after it was lost or closed."""

    def __init__(self, dsn: str, schema: str, timeout: int, *, readonly: bool = False) -> None:
        self.dsn, self.schema, self.timeout, self.readonly = dsn, schema, timeout, readonly
        self._conn: psycopg2.extensions.connection | None = None

    def get(self) -> psycopg2.extensions.connection:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.dsn, self.schema, self.timeout, readonly=self.readonly)
        return self._conn

    def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None


class PostgresViewStore(ViewStore):
    """Views in one PostgreSQL schema (so tests and rebuilds get their own set)."""

    def __init__(self, dsn: str, schema: str = "ledger", *, connect_timeout: int = 10) -> None:
        self.dsn, self.schema = dsn, schema
        self._connection = LazyConnection(dsn, schema, connect_timeout)

    # -- connection -----------------------------------------------------------------------
    @property
    def conn(self) -> psycopg2.extensions.connection:
        return self._connection.get()

    @contextmanager
    def _tx(self) -> Iterator[psycopg2.extensions.cursor]:
        """One transaction. A lost connection (server restart, terminated backend) becomes
        ``ViewStoreUnavailable`` and the next call reconnects; whether the transaction
        committed is then unknown, so callers re-read the stored offsets."""
        conn = self.conn
        try:
            with views_created(self.dsn, self.schema), conn, conn.cursor() as cur:
                yield cur
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            conn.close()
            raise ViewStoreUnavailable(f"PostgreSQL connection lost ({self.schema}): {str(exc).strip()}") from exc

    def close(self) -> None:
        self._connection.close()

    # -- schema ---------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        applied: list[str] = []
        with self._tx() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"ledger-migrate:{self.schema}",))
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur.execute("SELECT version FROM schema_migrations")
            done = {v for (v,) in cur.fetchall()}
            for migration in migrations.load("postgres"):
                if migration.version not in done:
                    cur.execute(migration.sql)
                    cur.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                    applied.append(f"{migration.version:04d}_{migration.name}")
        return applied

    # -- the projector's side -------------------------------------------------------------
    def offsets(self, projection: str, topic: str) -> dict[int, int]:
        with self._tx() as cur:
            cur.execute(
                "SELECT partition, next_offset FROM projection_offsets WHERE projection = %s AND topic = %s",
                (projection, topic),
            )
            return {p: o for p, o in cur.fetchall()}

    def write(self, changes: Changes) -> None:
        with self._tx() as cur:
            # shared: projectors do not block each other; a rebuild's swap takes it
            # exclusively, so no batch is half-way through while the views are swapped
            cur.execute("SELECT pg_advisory_xact_lock_shared(hashtext(%s))", (views_lock_name(self.schema),))
            self._claim_offsets(cur, changes)
            if changes.deleted_tasks:
                cur.execute("DELETE FROM task_event WHERE task_id = ANY(%s)", (changes.deleted_tasks,))
                cur.execute("DELETE FROM task_meta WHERE task_id = ANY(%s)", (changes.deleted_tasks,))
            self._copy(
                cur, "task_event", TASK_EVENT_COLUMNS, (task_event_values(r, DIALECT) for r in changes.task_history)
            )
            self._copy(
                cur,
                "periodic_task_event",
                PERIODIC_EVENT_COLUMNS,
                (periodic_event_values(r, DIALECT) for r in changes.periodic_history),
            )
            self._upsert(cur, "task_meta", TASK_COLUMNS, "task_id", [task_values(s, DIALECT) for s in changes.tasks])
            self._upsert(
                cur,
                "periodic_task_meta",
                PERIODIC_COLUMNS,
                "name",
                [periodic_values(s, DIALECT) for s in changes.periodic],
            )
            self._store_offsets(cur, changes)

    def _claim_offsets(self, cur: psycopg2.extensions.cursor, changes: Changes) -> None:
        """Lock this batch's offset rows and refuse the batch if they moved (zombie guard)."""
        partitions = sorted(changes.offsets)
        psycopg2.extras.execute_values(
            cur,
            "INSERT INTO projection_offsets (projection, topic, partition, next_offset) VALUES %s "
            "ON CONFLICT DO NOTHING",
            [(changes.projection, changes.topic, p, 0) for p in partitions],
        )
        cur.execute(
            "SELECT partition, next_offset FROM projection_offsets WHERE projection = %s "
            "AND topic = %s AND partition = ANY(%s) ORDER BY partition FOR UPDATE",
            (changes.projection, changes.topic, partitions),
        )
        stored = dict(cur.fetchall())
        moved = {p: stored.get(p, 0) for p in partitions if stored.get(p, 0) != changes.expected_offsets.get(p, 0)}
        if moved:
            raise StaleOffsets(
                f"offsets of {changes.topic} moved under projection {changes.projection!r}: "
                f"expected {changes.expected_offsets}, stored {moved}"
            )

    def _store_offsets(self, cur: psycopg2.extensions.cursor, changes: Changes) -> None:
        psycopg2.extras.execute_values(
            cur,
            "UPDATE projection_offsets AS o SET next_offset = v.next_offset, updated_at = now() "
            "FROM (VALUES %s) AS v (projection, topic, partition, next_offset) "
            "WHERE o.projection = v.projection AND o.topic = v.topic AND o.partition = v.partition",
            [(changes.projection, changes.topic, p, o) for p, o in sorted(changes.offsets.items())],
            template="(%s, %s, %s::integer, %s::bigint)",
        )

    @staticmethod
    def _copy(
        cur: psycopg2.extensions.cursor, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> None:
        buffer = _copy_buffer(rows)
        if buffer.getvalue():
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), _columns(columns))
            cur.copy_expert(statement.as_string(cur), buffer)

    def _upsert(
        self, cur: psycopg2.extensions.cursor, table: str, columns: Sequence[str], key: str, rows: list[tuple[Any, ...]]
    ) -> None:
        if not rows:
            return
        staging = sql.Identifier(f"staging_{table}")
        cur.execute(
            sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} ) ON COMMIT DELETE ROWS").format(
                staging, sql.Identifier(self.schema, table)
            )
        )
        buffer = _copy_buffer(rows)
        cur.copy_expert(sql.SQL("COPY {} ({}) FROM STDIN").format(staging, _columns(columns)).as_string(cur), buffer)
        updates = sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in columns if c != key
        )
        cur.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO UPDATE SET {}").format(
                sql.Identifier(table),
                _columns(columns),
                _columns(columns),
                staging,
                sql.Identifier(key),
                updates,
            )
        )
        cur.execute(sql.SQL("TRUNCATE {}").format(staging))

    def load_tasks(self, task_ids: Iterable[str]) -> dict[str, TaskState]:
        ids = list(task_ids)
        if not ids:
            return {}
        with self._tx() as cur:
            cur.execute(
                sql.SQL("SELECT {} FROM task_meta WHERE task_id = ANY(%s)").format(_columns(TASK_COLUMNS)), (ids,)
            )
            return {row[0]: task_from_row(row, DIALECT) for row in cur.fetchall()}

    def load_periodic(self, names: Iterable[str]) -> dict[str, PeriodicState]:
        with self._tx() as cur:
            cur.execute(
                sql.SQL("SELECT {} FROM periodic_task_meta WHERE name = ANY(%s)").format(_columns(PERIODIC_COLUMNS)),
                (list(names),),
            )
            return {row[0]: periodic_from_row(row) for row in cur.fetchall()}

    def known_event_ids(self, event_ids: Iterable[UUID]) -> set[UUID]:
        # one array literal ('{…}'::uuid[]) instead of thousands of quoted '…'::uuid
        # elements: PostgreSQL parses it ~10x faster, and this runs once per batch
        ids = "{" + ",".join([str(event_id) for event_id in event_ids]) + "}"
        with self._tx() as cur:
            cur.execute(
                "WITH wanted AS (SELECT %s::uuid[] AS ids) "
                "SELECT event_id FROM task_event, wanted WHERE event_id = ANY(wanted.ids) UNION ALL "
                "SELECT event_id FROM periodic_task_event, wanted WHERE event_id = ANY(wanted.ids)",
                (ids,),
            )
            return {v if isinstance(v, UUID) else UUID(str(v)) for (v,) in cur.fetchall()}

    def task_history(self, task_ids: Iterable[str]) -> list[HistoryRow]:
        with self._tx() as cur:
            cur.execute(
                sql.SQL('SELECT {} FROM task_event WHERE task_id = ANY(%s) ORDER BY partition, "offset"').format(
                    _columns(TASK_EVENT_COLUMNS)
                ),
                (list(task_ids),),
            )
            return [history_from_row(r, periodic=False) for r in cur.fetchall()]

    def periodic_history(self, names: Iterable[str]) -> list[HistoryRow]:
        with self._tx() as cur:
            cur.execute(
                sql.SQL('SELECT {} FROM periodic_task_event WHERE name = ANY(%s) ORDER BY partition, "offset"').format(
                    _columns(PERIODIC_EVENT_COLUMNS)
                ),
                (list(names),),
            )
            return [history_from_row(r, periodic=True) for r in cur.fetchall()]

    # -- the readers' side ----------------------------------------------------------------
    def get_task(self, task_id: str) -> TaskState | None:
        return self.load_tasks([task_id]).get(task_id)

    def list_tasks(self, where: TaskFilter, *, after: Cursor | None, limit: int) -> list[TaskState]:
        clauses, params = _filter_sql(where)
        if after is not None:
            clauses.append("(first_seen, task_id) < (%s, %s)")
            params += [after.first_seen, after.task_id]
        query = sql.SQL("SELECT {} FROM task_meta {} ORDER BY first_seen DESC, task_id DESC LIMIT %s").format(
            _columns(TASK_COLUMNS), sql.SQL("WHERE " + " AND ".join(clauses) if clauses else "")
        )
        with self._tx() as cur:
            cur.execute(query, [*params, limit])
            return [task_from_row(r, DIALECT) for r in cur.fetchall()]

    def slowest_tasks(self, limit: int) -> list[TaskState]:
        with self._tx() as cur:
            cur.execute(
                sql.SQL(
                    "SELECT {} FROM task_meta WHERE runtime IS NOT NULL ORDER BY runtime DESC, task_id LIMIT %s"
                ).format(_columns(TASK_COLUMNS)),
                (limit,),
            )
            return [task_from_row(r, DIALECT) for r in cur.fetchall()]

    def drop(self) -> None:
        with self._tx() as cur:
            cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema)))
        self.close()

    def status_counts(self) -> dict[TaskStatus, int]:
        with self._tx() as cur:
            cur.execute("SELECT status, count(*) FROM task_meta GROUP BY status")
            return {TaskStatus(s): n for s, n in cur.fetchall()}

    def periodic_tasks(self) -> list[PeriodicState]:
        with self._tx() as cur:
            cur.execute(sql.SQL("SELECT {} FROM periodic_task_meta ORDER BY name").format(_columns(PERIODIC_COLUMNS)))
            return [periodic_from_row(r) for r in cur.fetchall()]

    def periodic_runs(self) -> dict[str, list[RunOutcome]]:
        with self._tx() as cur:
            cur.execute(PERIODIC_RUNS_SQL)
            return periodic_runs_from_rows(cur.fetchall())

    def finished_before(self, before: datetime, limit: int) -> list[str]:
        with self._tx() as cur:
            cur.execute(
                "SELECT task_id FROM task_meta WHERE status = ANY(%s) AND date_done < %s ORDER BY date_done LIMIT %s",
                ([s.value for s in READY_STATES], before, limit),
            )
            return [t for (t,) in cur.fetchall()]


def _filter_sql(where: TaskFilter) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if where.statuses:
        clauses.append("status = ANY(%s)")
        params.append([s.value for s in where.statuses])
    for column, value in (("name", where.name), ("worker", where.worker)):
        if value is not None:
            clauses.append(f"{column} = %s")
            params.append(value)
    if where.since is not None:
        clauses.append("date_done >= %s")
        params.append(where.since)
    if where.until is not None:
        clauses.append("date_done < %s")
        params.append(where.until)
    return clauses, params
