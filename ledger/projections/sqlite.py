"""The embedded view store: the same views in one SQLite file, for the zero-setup default.

Timestamps are stored as fixed-width UTC ISO text (``columns.utc_text``) so they sort as
text the way they sort as time; JSON is stored as canonical text.

Readers never create anything: a missing file (or one without the tables) is
``ViewsNotCreated``. A projector holds the ``WriterLock`` from its first batch until
``close()``, so it and a rebuild (which replaces the file) never both write.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

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
    utc_text,
)
from ledger.projections.sqlite_files import FileIdentity, WriterLock, connect_views, file_identity
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

DIALECT = Dialect(dump_json=json_text, load_json=json.loads, dump_time=utc_text, dump_uuid=str, dump_bool=int)
_CHUNK = 500  # stays below SQLite's bound-parameter limit


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _marks(n: int) -> str:
    return ", ".join("?" * n)


class SqliteViewStore(ViewStore):
    """Views in one SQLite file (WAL mode, so readers never block the projector)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.writer_lock = WriterLock(self.path)
        self._conn: sqlite3.Connection | None = None
        self._identity: FileIdentity = None
        self._switched = False

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection, opened on first use, and again when a rebuild replaced the file
        (noted, so that a batch planned on the replaced file is not written: see ``write``)."""
        if self._conn is not None and file_identity(self.path) != self._identity:
            self.disconnect()
            self._switched = True
        if self._conn is None:
            identity = file_identity(self.path)  # before connecting: a swap in between reads as a switch
            self._conn = connect_views(self.path)
            self._identity = identity
        return self._conn

    @contextmanager
    def _tx(self, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Cursor]:
        cur = (conn or self.conn).cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def disconnect(self) -> None:
        """Close the connection but keep the writer lock (a rebuild's swap needs both)."""
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def close(self) -> None:
        self.disconnect()
        self._switched = False
        self.writer_lock.release()

    def _pending(self) -> bool:
        """Whether a migration is to be applied, read without writing (nor locking)."""
        try:
            done = {v for (v,) in self.conn.execute("SELECT version FROM schema_migrations")}
        except (ViewsNotCreated, sqlite3.OperationalError):
            return True
        return any(m.version not in done for m in migrations.load("sqlite"))

    def migrate(self) -> list[str]:
        """Under the writer lock only while migrating: a store that migrates, then only
        reads (a server, a test), must not keep projectors out."""
        if not self._pending():
            return []  # up to date: no write, so no writer lock (a rebuild may hold it)
        held = self.writer_lock.held
        self.writer_lock.acquire()
        try:
            if self._conn is None:
                self._conn = connect_views(self.path, create=True)
                self._identity = file_identity(self.path)
            return self._apply_migrations()
        finally:
            if not held:
                self.writer_lock.release()

    def _apply_migrations(self) -> list[str]:
        applied: list[str] = []
        with self._tx() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                "name text NOT NULL, applied_at text NOT NULL DEFAULT CURRENT_TIMESTAMP)"
            )
            done = {v for (v,) in cur.execute("SELECT version FROM schema_migrations")}
            for migration in migrations.load("sqlite"):
                if migration.version not in done:
                    for statement in migration.sql.split(";"):
                        if statement.strip():
                            cur.execute(statement)
                    cur.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                        (migration.version, migration.name),
                    )
                    applied.append(f"{migration.version:04d}_{migration.name}")
        return applied

    # -- the projector's side -------------------------------------------------------------
    def offsets(self, projection: str, topic: str) -> dict[int, int]:
        rows = self.conn.execute(
            "SELECT partition, next_offset FROM projection_offsets WHERE projection = ? AND topic = ?",
            (projection, topic),
        )
        return {p: o for p, o in rows}

    def write(self, changes: Changes) -> None:
        self.writer_lock.acquire()
        conn = self.conn
        if self._switched:  # the batch was planned (partly) on the replaced file
            self._switched = False
            raise ViewStoreUnavailable(f"the views {self.path} were replaced (a rebuild): reading them again")
        with self._tx(conn) as cur:
            stored = dict(
                cur.execute(
                    "SELECT partition, next_offset FROM projection_offsets WHERE projection = ? AND topic = ?",
                    (changes.projection, changes.topic),
                ).fetchall()
            )
            moved = {
                p: stored.get(p, 0) for p in changes.offsets if stored.get(p, 0) != changes.expected_offsets.get(p, 0)
            }
            if moved:
                raise StaleOffsets(
                    f"offsets of {changes.topic} moved: expected {changes.expected_offsets}, stored {moved}"
                )
            for chunk in _chunks(changes.deleted_tasks):
                cur.execute(f"DELETE FROM task_event WHERE task_id IN ({_marks(len(chunk))})", chunk)
                cur.execute(f"DELETE FROM task_meta WHERE task_id IN ({_marks(len(chunk))})", chunk)
            self._insert(
                cur, "task_event", TASK_EVENT_COLUMNS, [task_event_values(r, DIALECT) for r in changes.task_history]
            )
            self._insert(
                cur,
                "periodic_task_event",
                PERIODIC_EVENT_COLUMNS,
                [periodic_event_values(r, DIALECT) for r in changes.periodic_history],
            )
            self._insert(cur, "task_meta", TASK_COLUMNS, [task_values(s, DIALECT) for s in changes.tasks], replace=True)
            self._insert(
                cur,
                "periodic_task_meta",
                PERIODIC_COLUMNS,
                [periodic_values(s, DIALECT) for s in changes.periodic],
                replace=True,
            )
            cur.executemany(
                "INSERT INTO projection_offsets (projection, topic, partition, next_offset) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (projection, topic, partition) DO UPDATE SET next_offset = excluded.next_offset, "
                "updated_at = CURRENT_TIMESTAMP",
                [(changes.projection, changes.topic, p, o) for p, o in changes.offsets.items()],
            )

    @staticmethod
    def _insert(
        cur: sqlite3.Cursor, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]], *, replace: bool = False
    ) -> None:
        if rows:
            verb = "INSERT OR REPLACE" if replace else "INSERT"
            names = ", ".join(f'"{c}"' for c in columns)
            cur.executemany(f"{verb} INTO {table} ({names}) VALUES ({_marks(len(columns))})", rows)

    def _select(self, query: str, values: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run ``query`` (with one ``{marks}`` placeholder) over ``values`` in chunks."""
        rows: list[tuple[Any, ...]] = []
        for chunk in _chunks(list(values)):
            rows += self.conn.execute(query.format(marks=_marks(len(chunk))), tuple(chunk)).fetchall()
        return rows

    def load_tasks(self, task_ids: Iterable[str]) -> dict[str, TaskState]:
        query = f"SELECT {', '.join(TASK_COLUMNS)} FROM task_meta WHERE task_id IN ({{marks}})"
        return {row[0]: task_from_row(row, DIALECT) for row in self._select(query, list(task_ids))}

    def load_periodic(self, names: Iterable[str]) -> dict[str, PeriodicState]:
        query = f"SELECT {', '.join(PERIODIC_COLUMNS)} FROM periodic_task_meta WHERE name IN ({{marks}})"
        return {row[0]: periodic_from_row(row) for row in self._select(query, list(names))}

    def known_event_ids(self, event_ids: Iterable[UUID]) -> set[UUID]:
        ids = [str(e) for e in event_ids]
        rows = self._select("SELECT event_id FROM task_event WHERE event_id IN ({marks})", ids)
        rows += self._select("SELECT event_id FROM periodic_task_event WHERE event_id IN ({marks})", ids)
        return {UUID(v) for (v,) in rows}

    def task_history(self, task_ids: Iterable[str]) -> list[HistoryRow]:
        cols = ", ".join(f'"{c}"' for c in TASK_EVENT_COLUMNS)
        rows = self._select(f"SELECT {cols} FROM task_event WHERE task_id IN ({{marks}})", list(task_ids))
        return sorted((history_from_row(r, periodic=False) for r in rows), key=lambda h: (h.partition, h.offset))

    def periodic_history(self, names: Iterable[str]) -> list[HistoryRow]:
        cols = ", ".join(f'"{c}"' for c in PERIODIC_EVENT_COLUMNS)
        rows = self._select(f"SELECT {cols} FROM periodic_task_event WHERE name IN ({{marks}})", list(names))
        return sorted((history_from_row(r, periodic=True) for r in rows), key=lambda h: (h.partition, h.offset))

    # -- the readers' side ----------------------------------------------------------------
    def get_task(self, task_id: str) -> TaskState | None:
        return self.load_tasks([task_id]).get(task_id)

    def list_tasks(self, where: TaskFilter, *, after: Cursor | None, limit: int) -> list[TaskState]:
        clauses: list[str] = []
        params: list[Any] = []
        if where.statuses:
            clauses.append(f"status IN ({_marks(len(where.statuses))})")
            params += [s.value for s in where.statuses]
        for column, value in (("name", where.name), ("worker", where.worker)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        for op, bound in ((">=", where.since), ("<", where.until)):
            if bound is not None:
                clauses.append(f"date_done {op} ?")
                params.append(utc_text(bound))
        if after is not None:
            clauses.append("(first_seen < ? OR (first_seen = ? AND task_id < ?))")
            params += [utc_text(after.first_seen), utc_text(after.first_seen), after.task_id]
        where_sql = "WHERE " + " AND ".join(clauses) if clauses else ""
        rows = self.conn.execute(
            f"SELECT {', '.join(TASK_COLUMNS)} FROM task_meta {where_sql} "
            "ORDER BY first_seen DESC, task_id DESC LIMIT ?",
            [*params, limit],
        )
        return [task_from_row(r, DIALECT) for r in rows]

    def slowest_tasks(self, limit: int) -> list[TaskState]:
        rows = self.conn.execute(
            f"SELECT {', '.join(TASK_COLUMNS)} FROM task_meta WHERE runtime IS NOT NULL "
            "ORDER BY runtime DESC, task_id LIMIT ?",
            (limit,),
        )
        return [task_from_row(r, DIALECT) for r in rows]

    def drop(self) -> None:
        self.close()
        for suffix in ("", "-wal", "-shm", ".lock"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)

    def status_counts(self) -> dict[TaskStatus, int]:
        rows = self.conn.execute("SELECT status, count(*) FROM task_meta GROUP BY status")
        return {TaskStatus(s): n for s, n in rows}

    def periodic_tasks(self) -> list[PeriodicState]:
        rows = self.conn.execute(f"SELECT {', '.join(PERIODIC_COLUMNS)} FROM periodic_task_meta ORDER BY name")
        return [periodic_from_row(r) for r in rows]

    def periodic_runs(self) -> dict[str, list[RunOutcome]]:
        return periodic_runs_from_rows(self.conn.execute(PERIODIC_RUNS_SQL))

    def finished_before(self, before: datetime, limit: int) -> list[str]:
        statuses = [s.value for s in READY_STATES]
        rows = self.conn.execute(
            f"SELECT task_id FROM task_meta WHERE status IN ({_marks(len(statuses))}) AND date_done < ? "
            "ORDER BY date_done LIMIT ?",
            [*statuses, utc_text(before), limit],
        )
        return [t for (t,) in rows]
