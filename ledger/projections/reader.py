"""The view reader, written once for PostgreSQL and SQLite: every query is built here from
``schema`` and a ``TaskFilter``; the ``Database`` says how to reach the views.

A reader has its own connection (read-only where the database can enforce it), so a long
history scan never holds the projector's.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    tuple_,
    union_all,
)

from ledger.domain.fold import TaskState
from ledger.domain.periodic import PeriodicState
from ledger.domain.series import Axis, SeriesFilter
from ledger.domain.statuses import IN_FLIGHT_STATES, READY_STATES, TaskStatus
from ledger.domain.workers import WorkerState
from ledger.domain.workflow import WorkflowNode
from ledger.projections.failure_sql import counts_query, examples_query, trend_query
from ledger.projections.failure_types import Buckets, FailureFilter, GroupCounts, GroupDetail
from ledger.projections.schema import (
    DESCENDANT,
    periodic_task_event,
    projection_offsets,
    task_event,
    task_meta,
    worker_meta,
)
from ledger.projections.search_sql import ordered, search_pages
from ledger.projections.series_sql import counts_query as series_counts_query
from ledger.projections.series_sql import runtimes_query, waits_query
from ledger.projections.sql import (
    HISTORY_COLUMNS,
    NODE_COLUMNS,
    PERIODIC_COLUMNS,
    TASK_COLUMNS,
    WORKER_COLUMNS,
    Database,
    history_row,
    worker_state,
)
from ledger.projections.sqltypes import UtcTimestamp
from ledger.projections.store import (
    DEFAULT_ORDER,
    Cursor,
    HistoryRow,
    InFlight,
    RunOutcome,
    SeriesRows,
    TaskFilter,
    TaskOrder,
    ViewReader,
    WorkerTasks,
)

__all__ = ["SqlViewReader", "offsets_query", "task_filter", "workflow_query"]


def task_filter(where: TaskFilter, database: Database) -> list[ColumnElement[bool]]:
    """The conditions ``where`` sets on ``task_meta``, but its free text (``search_sql``);
    a kwarg's through ``database``, whose index serves it (the rules: ``domain.search``)."""
    t = task_meta.c
    clauses: list[ColumnElement[bool]] = []
    if where.statuses:
        clauses.append(t.status.in_([s.value for s in where.statuses]))
    for column, value in ((t.name, where.name), (t.worker, where.worker), (t.queue, where.queue),
                          (t.parent_id, where.parent_id)):  # fmt: skip
        if value is not None:
            clauses.append(column == value)
    if where.root_id is not None:  # the tasks under it (as its index holds them), or the root itself
        clauses.append(or_(and_(t.root_id == where.root_id, DESCENDANT),
                           and_(t.task_id == where.root_id, t.root_id == where.root_id)))  # fmt: skip
    if where.since is not None:
        clauses.append(t.date_done >= where.since)
    if where.until is not None:
        clauses.append(t.date_done < where.until)
    if where.runtime_above is not None:
        clauses.append(t.runtime > where.runtime_above)
    if where.runtime_below is not None:
        clauses.append(t.runtime < where.runtime_below)
    if where.retried:  # a RETRY ends its attempt: the task retried even before the next one shows
        clauses.append(or_(t.retries >= 1, t.status == TaskStatus.RETRY.value))
    clauses += [database.kwarg_equals(key, value) for key, value in where.kwargs]
    return clauses


def offsets_query(projection: str, topic: str) -> Select[Any]:
    o = projection_offsets.c
    return select(o.partition, o.next_offset).where(o.projection == projection, o.topic == topic)


def workflow_query() -> Select[Any]:
    """The nodes of the workflow of ``:task_id``, in ONE statement: a recursive CTE of keys
    to follow, each row one of: a task found, a root to follow (the tasks naming it as
    their root), a group to follow (its tasks), an id to fetch (a root task's own row).

    Start from the id as a root and as an id; each step finds the tasks the new keys lead
    to and yields their ids, roots and groups as keys, and their root as an id to fetch
    when it is another task (a task that is its own root is already found). UNION drops
    keys already found, so each root and group is looked up once (a group of 10,000 once,
    not once per member) and the recursion ends when a step finds nothing new; only the
    final node rows leave the database. Each key is its own column (NULL in the others),
    so a lookup probes one index: a NULL key costs no index descent. A root key probes the
    tasks under that root (``DESCENDANT``, all its index holds); the root's own row is found
    by its id, as the start's, or as each task found is (a member of a group that is its own
    root: its probe finds nothing, and touches no row)."""
    t = task_meta.c
    kind = {name: literal_column(f"'{name}'", Text) for name in ("t", "r", "g", "i")}  # constants the planner sees
    kinds = union_all(*(select(kind[name].label("kind")) for name in kind)).subquery("kinds")
    nothing = cast(null(), Text)
    start = bindparam("task_id", type_=Text)
    keys = select(nothing.label("task"), start.label("root"), nothing.label("grp"), start.label("ident")).cte(
        "workflow_keys", recursive=True
    )
    found = keys.alias("found")
    # what a task leads to, less what the key that found it already says: its root when
    # found by that root, its group when found by that group
    task = case((kinds.c.kind == kind["t"], t.task_id))
    root = case((and_(kinds.c.kind == kind["r"], or_(found.c.root.is_(None), t.root_id != found.c.root)), t.root_id))
    grp = case((and_(kinds.c.kind == kind["g"], found.c.grp.is_(None)), t.group_id))
    ident = case((and_(kinds.c.kind == kind["i"], t.root_id != t.task_id), t.root_id))
    probe = or_(and_(t.root_id == found.c.root, DESCENDANT), t.task_id == found.c.ident, t.group_id == found.c.grp)
    step = (
        select(task, root, grp, ident)
        .select_from(found.join(task_meta, probe).join(kinds, true()))
        .where(found.c.task.is_(None), func.coalesce(task, root, grp, ident).is_not(None))
    )
    keys = keys.union(step)
    # in order of appearance, as ``build_workflow`` sorts them: its sort then only checks
    return select(*NODE_COLUMNS).where(t.task_id.in_(select(keys.c.task))).order_by(t.first_seen, t.task_id)


_WORKFLOW = workflow_query()
_TASK_BY_ID = select(*TASK_COLUMNS).where(task_meta.c.task_id == bindparam("task_id"))
"""Built once: a statement made per call costs more than the query itself (~0.3 ms)."""


class SqlViewReader(ViewReader):
    """Reads the views of one ``Database``."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def close(self) -> None:
        self.database.dispose()

    def _rows(self, query: Select[Any], params: dict[str, Any] | None = None) -> list[Any]:
        with self.database.reading() as conn:
            return list(conn.execute(query, params))

    def offsets(self, projection: str, topic: str) -> dict[int, int]:
        return {p: o for p, o in self._rows(offsets_query(projection, topic))}

    def task_state(self, task_id: str) -> TaskState | None:
        rows = self._rows(_TASK_BY_ID, {"task_id": task_id})
        return TaskState(*rows[0]) if rows else None

    def list_tasks(self, where: TaskFilter, *, after: Cursor | None, limit: int,
                   order: TaskOrder = DEFAULT_ORDER) -> list[TaskState]:  # fmt: skip
        if after is not None and after.order is not order:
            raise ValueError(f"cursor: issued for sort={after.order.value}, not sort={order.value}")
        t = task_meta.c
        key = t[order.key]
        clauses = task_filter(where, self.database)
        if after is not None:
            position = tuple_(literal(after.at, UtcTimestamp), literal(after.task_id))
            clauses.append(tuple_(key, t.task_id) < position if order.descending else tuple_(key, t.task_id) > position)
        if where.terms:
            for query in search_pages(self.database, where.terms, clauses, limit, order):
                rows = self._rows(query)
                if len(rows) >= limit:
                    break
            return [TaskState(*row) for row in rows]
        query = select(*TASK_COLUMNS).where(*clauses).order_by(*ordered(task_meta, order)).limit(limit)
        return [TaskState(*row) for row in self._rows(query)]

    def slowest_tasks(self, limit: int) -> list[TaskState]:
        t = task_meta.c
        query = select(*TASK_COLUMNS).where(t.runtime.is_not(None)).order_by(t.runtime.desc(), t.task_id).limit(limit)
        return [TaskState(*row) for row in self._rows(query)]

    def status_counts(self) -> dict[TaskStatus, int]:
        query = select(task_meta.c.status, func.count()).group_by(task_meta.c.status)
        return {status: n for status, n in self._rows(query)}

    def periodic_tasks(self) -> list[PeriodicState]:
        query = select(*PERIODIC_COLUMNS).order_by(PERIODIC_COLUMNS[0])
        return [PeriodicState(*row) for row in self._rows(query)]

    def periodic_runs(self) -> dict[str, list[RunOutcome]]:
        e, t = periodic_task_event.c, task_meta.c
        query = (
            select(e.name, e.occurred_at, e.task_id, t.status, t.date_done)
            .select_from(periodic_task_event.outerjoin(task_meta, t.task_id == e.task_id))
            .where(e.type == "periodic.triggered")
            .order_by(e.name, e.occurred_at, e.event_id)
        )
        runs: dict[str, list[RunOutcome]] = {}
        for name, triggered_at, task_id, status, date_done in self._rows(query):
            runs.setdefault(name, []).append(RunOutcome(triggered_at, task_id, status, date_done))
        return runs

    def finished_before(self, before: datetime, limit: int) -> list[str]:
        t = task_meta.c
        query = (
            select(t.task_id).where(t.status.in_([s.value for s in READY_STATES]), t.date_done < before)
            .order_by(t.date_done).limit(limit)
        )  # fmt: skip
        return [task_id for (task_id,) in self._rows(query)]

    def _workflow_nodes(self, task_id: str) -> list[WorkflowNode]:
        with self.database.reading() as conn, self.database.index_lookups(conn):
            return [WorkflowNode(*row) for row in conn.execute(_WORKFLOW, {"task_id": task_id}).all()]

    def failure_counts(self, where: FailureFilter, limit: int) -> list[GroupCounts]:
        return [GroupCounts(*row) for row in self._rows(counts_query(where, limit))]

    def failure_details(self, where: FailureFilter, fingerprints: Collection[str], *, examples: int,
                        buckets: Buckets) -> dict[str, GroupDetail]:  # fmt: skip
        if not fingerprints:
            return {}
        details: dict[str, GroupDetail] = {}
        # a task that failed twice in one group (an id re-run) shows once: ask for a few more
        for fingerprint, task_id, payload in self._rows(examples_query(where, fingerprints, examples * 2)):
            detail = details.setdefault(fingerprint, GroupDetail(payload.encode(), [], [0] * buckets.count))
            if task_id not in detail.examples and len(detail.examples) < examples:
                detail.examples.append(task_id)
        for fingerprint, index, count in self._rows(trend_query(self.database, where, fingerprints, buckets)):
            if fingerprint in details:  # float rounding at the span's edge stays in its end buckets
                details[fingerprint].trend[min(max(index, 0), buckets.count - 1)] += count
        return details

    def series_rows(self, where: SeriesFilter, axis: Axis) -> SeriesRows:
        database = self.database
        counts = [(b, s, n) for b, s, n in self._rows(series_counts_query(database, where, axis))]
        runtimes = [(b, p50, p95, p99) for b, p50, p95, p99 in self._rows(runtimes_query(database, where, axis))]
        waits = [(b, p50, p95, p99) for b, p50, p95, p99 in self._rows(waits_query(database, where, axis))]
        return SeriesRows(counts, runtimes, waits)

    def workers(self, *, hostname: str | None = None, limit: int) -> list[WorkerState]:
        query = select(*WORKER_COLUMNS).order_by(worker_meta.c.hostname).limit(limit)
        if hostname is not None:
            query = query.where(worker_meta.c.hostname == hostname)
        return [worker_state(row) for row in self._rows(query)]

    def worker_tasks(self, hostname: str, *, newest: int) -> WorkerTasks:
        t = task_meta.c  # both walk task_meta_worker_first_seen_idx over this worker's range
        counts = select(t.status, func.count()).where(t.worker == hostname).group_by(t.status)
        latest = (
            select(t.task_id).where(t.worker == hostname)
            .order_by(t.first_seen.desc(), t.task_id.desc()).limit(newest)
        )  # fmt: skip
        with self.database.reading() as conn:
            return WorkerTasks({status: n for status, n in conn.execute(counts)},
                               [task_id for (task_id,) in conn.execute(latest)])  # fmt: skip

    def _task_events(self, task_id: str, until: datetime | None) -> list[HistoryRow]:
        e = task_event.c
        query = select(*HISTORY_COLUMNS).where(e.task_id == task_id).order_by(e.partition, e.offset)
        if until is not None:
            query = query.where(e.occurred_at <= until)
        return [history_row(row) for row in self._rows(query)]

    def _status_counts_as_of(self, at: datetime) -> dict[TaskStatus, int]:
        top = self.database.top_statuses_as_of(literal(at, UtcTimestamp)).subquery("top")
        query = select(top.c.status, func.count()).group_by(top.c.status)
        with self.database.reading() as conn, self.database.index_lookups(conn):
            return {TaskStatus(status): n for status, n in conn.execute(query)}

    def _in_flight_as_of(self, at: datetime, limit: int) -> InFlight:
        top = self.database.top_statuses_as_of(literal(at, UtcTimestamp)).subquery("top")
        t = task_meta.c
        query = (
            select(top.c.task_id, t.name, top.c.status, func.count().over().label("total"))
            .select_from(top.outerjoin(task_meta, t.task_id == top.c.task_id))
            .where(top.c.status.in_(sorted(s.value for s in IN_FLIGHT_STATES)))
            .order_by(top.c.task_id).limit(limit)
        )  # fmt: skip
        with self.database.reading() as conn, self.database.index_lookups(conn):
            rows = conn.execute(query).all()
        tasks = [(task_id, name, TaskStatus(status)) for task_id, name, status, _ in rows]
        return InFlight(tasks, rows[0].total if rows else 0)
