"""What every view writer does the same way, written once: the migrations, the conditional
offset write, the reads the planner makes. A backend adds how it writes the rows of a batch
in bulk (``_write_rows``) and how it guards a migration.

The offset guard: a batch first claims its partitions' offset rows (inserting missing
ones at 0) and reads them under a row lock (PostgreSQL; SQLite's write lock covers the
whole file), refuses the batch if they moved since it was read, and sets them last, all in
the one transaction that writes the rows.
"""

from __future__ import annotations

from abc import abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Connection,
    Insert,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    or_,
    select,
    union_all,
    update,
)

from ledger.domain.fold import TaskState
from ledger.domain.periodic import PeriodicState
from ledger.domain.workers import WorkerState
from ledger.projections import migrations
from ledger.projections.reader import offsets_query
from ledger.projections.schema import (
    PRIMARY_KEYS,
    failure_resolution,
    metadata,
    periodic_task_event,
    periodic_task_meta,
    projection_offsets,
    task_event,
    task_meta,
    worker_meta,
)
from ledger.projections.series_rollup import apply_counts, expired_counts, history_counts
from ledger.projections.sql import HISTORY_COLUMNS, PERIODIC_COLUMNS, TASK_COLUMNS, Database, history_row
from ledger.projections.store import Changes, GroupDecision, HistoryRow, StaleOffsets, ViewWriter

__all__ = ["SqlViewWriter", "moved_offsets"]

_MERGED_WORKER_COLUMNS = frozenset({"hostname", "first_seen", "last_heartbeat", "offline_at"})
"""The worker_meta columns not taken from the latest event (the key, and each its own rule)."""


def _worker_values(state: WorkerState) -> dict[str, object]:
    """A worker row's values by column (the load average as a JSON list)."""
    values = {column.name: getattr(state, column.name) for column in worker_meta.columns}
    values["loadavg"] = None if state.loadavg is None else list(state.loadavg)
    return values


def moved_offsets(changes: Changes, stored: dict[int, int]) -> dict[int, int]:
    """The stored offsets of the batch's partitions that are not the ones it was read from
    (absent counts as 0)."""
    expected = changes.expected_offsets
    return {p: stored.get(p, 0) for p in sorted(changes.offsets) if stored.get(p, 0) != expected.get(p, 0)}


_o = projection_offsets.c
_STORE_OFFSET = (
    update(projection_offsets)
    .where(_o.projection == bindparam("b_projection"), _o.topic == bindparam("b_topic"),
           _o.partition == bindparam("b_partition"))
    .values(next_offset=bindparam("b_next_offset"), updated_at=func.current_timestamp())
)  # fmt: skip


class SqlViewWriter(ViewWriter):
    """The views of one ``Database``, written by one projector (or a rebuild)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._together: Connection | None = None

    def close(self) -> None:
        self.database.dispose()

    # -- schema ---------------------------------------------------------------------------
    def migrate(self, target: str = "head") -> list[str]:
        with self._migration() as (conn, schema):
            return migrations.upgrade(conn, target, schema=schema)

    @abstractmethod
    def _migration(self) -> AbstractContextManager[tuple[Connection, str | None]]:
        """The transaction a migration runs in, under the backend's migration lock and
        with what it needs (the schema, the file); and the schema of the version table
        (None: the connection's own)."""

    # -- the batch ------------------------------------------------------------------------
    def write(self, changes: Changes) -> None:
        with self.database.transaction() as conn:
            self._claim_offsets(conn, changes)
            if changes.deleted_tasks:
                expired = expired_counts(conn, self.database, changes.deleted_tasks)
                apply_counts(conn, self._insert, Counter({key: -n for key, n in expired.items()}))
                for table in (task_event, task_meta):
                    conn.execute(delete(table).where(self.database.members(table.c.task_id, changes.deleted_tasks)))
            self._write_rows(conn, changes)
            apply_counts(conn, self._insert, history_counts(changes.task_history))
            self._write_decisions(conn, changes)
            self._write_workers(conn, changes.workers)
            conn.execute(_STORE_OFFSET, [
                {"b_projection": changes.projection, "b_topic": changes.topic, "b_partition": p, "b_next_offset": o}
                for p, o in sorted(changes.offsets.items())
            ])  # fmt: skip

    def _write_decisions(self, conn: Connection, changes: Changes) -> None:
        """Upsert the batch's failure-group decisions: per group and kind (resolved,
        reopened), the latest (few rows, so through SQLAlchemy on both backends). Each kind
        has its own columns and only ever moves forward, so a replayed older decision (a
        duplicate append read again) overwrites nothing and the order they are applied in
        does not matter."""
        latest: dict[tuple[str, str], GroupDecision] = {}
        for d in changes.decisions:
            held = latest.get((d.fingerprint, d.kind))
            if held is None or (d.at, str(d.event_id)) >= (held.at, str(held.event_id)):
                latest[d.fingerprint, d.kind] = d
        c = failure_resolution.c
        for kind in ("resolved", "reopened"):
            rows = [{"fingerprint": d.fingerprint, f"{kind}_at": d.at, f"{kind}_by": d.by}
                    for d in latest.values() if d.kind == kind]  # fmt: skip
            if not rows:
                continue
            insert = self._insert(failure_resolution)
            at, by = c[f"{kind}_at"], insert.excluded[f"{kind}_by"]  # type: ignore[attr-defined]
            newer = at.is_(None) | (insert.excluded[f"{kind}_at"] >= at)  # type: ignore[attr-defined]
            upsert = insert.on_conflict_do_update(  # type: ignore[attr-defined]
                index_elements=[c.fingerprint],
                set_={f"{kind}_at": insert.excluded[f"{kind}_at"], f"{kind}_by": by},  # type: ignore[attr-defined]
                where=newer,
            )
            conn.execute(upsert, rows)

    def _write_workers(self, conn: Connection, workers: list[WorkerState]) -> None:
        """Upsert the batch's workers (one row each, few: through SQLAlchemy on both
        backends), merging with the stored row as ``domain.workers.merge`` does: the
        earliest first sighting, the latest heartbeat and offline, the latest event's
        details. Every column moves one way only, so a replayed or late event overwrites
        nothing newer and the order batches are applied in does not matter."""
        if not workers:
            return
        insert = self._insert(worker_meta)
        new, old = insert.excluded, worker_meta.c  # type: ignore[attr-defined]
        newer = or_(new.last_seen > old.last_seen,
                    and_(new.last_seen == old.last_seen, new.last_event_id > old.last_event_id))  # fmt: skip

        def latest(column: str) -> ColumnElement[object]:  # NULL on either side: the other
            return case((or_(old[column].is_(None), new[column] > old[column]), new[column]), else_=old[column])

        details = [c.name for c in worker_meta.columns if c.name not in _MERGED_WORKER_COLUMNS]
        upsert = insert.on_conflict_do_update(  # type: ignore[attr-defined]
            index_elements=[old.hostname],
            set_={"first_seen": case((new.first_seen < old.first_seen, new.first_seen), else_=old.first_seen),
                  "last_heartbeat": latest("last_heartbeat"), "offline_at": latest("offline_at"),
                  **{name: case((newer, new[name]), else_=old[name]) for name in details}},
        )  # fmt: skip
        conn.execute(upsert, [_worker_values(w) for w in workers])

    @abstractmethod
    def _insert(self, table: Table) -> Insert:
        """The dialect's INSERT (for its ON CONFLICT)."""

    @abstractmethod
    def _write_rows(self, conn: Connection, changes: Changes) -> None:
        """Append the batch's history rows and upsert its task and periodic rows, in bulk."""

    def _claim_offsets(self, conn: Connection, changes: Changes) -> None:
        """Lock this batch's offset rows and refuse the batch if they moved (zombie guard)."""
        moved = moved_offsets(changes, self._lock_offsets(conn, changes))
        if moved:
            raise StaleOffsets(
                f"offsets of {changes.topic} moved under projection {changes.projection!r}: "
                f"expected {changes.expected_offsets}, stored {moved}"
            )

    def _lock_offsets(self, conn: Connection, changes: Changes) -> dict[int, int]:
        """A batch's first statements: its partitions' offset rows claimed (inserted at 0
        where missing) and read under a row lock, by partition. A backend may send what
        else a batch needs first along with them (PostgreSQL: one round trip)."""
        partitions = sorted(changes.offsets)
        claim = self._insert(projection_offsets).on_conflict_do_nothing()  # type: ignore[attr-defined]
        conn.execute(claim, [{"projection": changes.projection, "topic": changes.topic, "partition": p,
                              "next_offset": 0} for p in partitions])  # fmt: skip
        locked = (
            offsets_query(changes.projection, changes.topic).where(_o.partition.in_(partitions))
            .order_by(_o.partition).with_for_update()
        )  # fmt: skip
        return {p: o for p, o in conn.execute(locked)}

    # -- what the planner reads -----------------------------------------------------------
    @contextmanager
    def reading_together(self) -> Iterator[None]:
        if self._together is not None:  # already inside one: its reads join it
            yield
            return
        with self.database.reading() as conn:
            self._together = conn
            try:
                yield
            finally:
                self._together = None

    def _rows(self, query: Any) -> list[Any]:
        if self._together is not None:
            return list(self._together.execute(query))
        with self.database.reading() as conn:
            return list(conn.execute(query))

    def offsets(self, projection: str, topic: str) -> dict[int, int]:
        return {p: o for p, o in self._rows(offsets_query(projection, topic))}

    def load_tasks(self, task_ids: Iterable[str]) -> dict[str, TaskState]:
        ids = list(task_ids)
        if not ids:
            return {}
        rows = self._rows(select(*TASK_COLUMNS).where(self.database.members(task_meta.c.task_id, ids)))
        return {row[0]: TaskState(*row) for row in rows}

    def load_periodic(self, names: Iterable[str]) -> dict[str, PeriodicState]:
        wanted = list(names)
        if not wanted:
            return {}
        rows = self._rows(select(*PERIODIC_COLUMNS).where(self.database.members(periodic_task_meta.c.name, wanted)))
        return {row[0]: PeriodicState(*row) for row in rows}

    def known_event_ids(self, event_ids: Iterable[UUID]) -> set[UUID]:
        ids = [str(event_id) for event_id in event_ids]
        if not ids:
            return set()
        both = union_all(select(task_event.c.event_id), select(periodic_task_event.c.event_id)).subquery()
        # one condition over both tables: the batch's ids are sent and parsed once (the
        # databases push it down into each table's index)
        query = select(both.c.event_id).where(self.database.members(both.c.event_id, ids))
        return {event_id for (event_id,) in self._rows(query)}

    def task_history(self, task_ids: Iterable[str]) -> list[HistoryRow]:
        ids = list(task_ids)
        if not ids:
            return []
        e = task_event.c
        query = select(*HISTORY_COLUMNS).where(self.database.members(e.task_id, ids)).order_by(e.partition, e.offset)
        return [history_row(row) for row in self._rows(query)]

    def table_rows(self, table: str) -> tuple[list[str], Iterator[tuple[object, ...]]]:
        source = metadata.tables[table]
        key = cast(source.c[PRIMARY_KEYS[table]], Text).collate(self.database.byte_order_collation)
        query = select(source).order_by(key)

        def stream() -> Iterator[tuple[object, ...]]:
            with self.database.reading() as conn:
                for row in conn.execution_options(stream_results=True, yield_per=5000).execute(query):
                    yield tuple(row)

        return [column.name for column in source.columns], stream()
