"""The trends queries, written once for both databases: a series counts the transitions of
the history per bucket (from its per-minute rollup, ``series_counts``, or for a name or
queue from ``task_event`` itself) and reads the percentiles from the task rows
(``task_meta``: runtimes by when the task finished, queue waits by when it was received),
so it is always what the log says and a rebuild gives the same. A bucket's index is whole
seconds minus the axis' origin, integer-divided by its width (``Database.whole_seconds``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Select, cast, func, literal, select

from ledger.domain.series import COUNTED, PERCENTILES, Axis, SeriesFilter
from ledger.domain.statuses import TaskStatus
from ledger.projections.schema import series_counts, task_event, task_meta
from ledger.projections.sql import Database
from ledger.projections.sqltypes import UtcTimestamp

__all__ = ["counts_query", "runtimes_query", "waits_query"]

_e, _t = task_event.c, task_meta.c
_FINISHED = (TaskStatus.DONE.value, TaskStatus.FAILURE.value)


def _bucket(database: Database, column: ColumnElement[Any], axis: Axis) -> ColumnElement[int]:
    return ((database.whole_seconds(column) - literal(axis.origin)) // literal(axis.width)).label("bucket")


def _window(column: ColumnElement[Any], axis: Axis) -> list[ColumnElement[bool]]:
    return [column >= literal(axis.start, UtcTimestamp), column < literal(axis.end, UtcTimestamp)]


def _tasks(where: SeriesFilter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if where.name is not None:
        clauses.append(_t.name == where.name)
    if where.queue is not None:
        clauses.append(_t.queue == where.queue)
    return clauses


def counts_query(database: Database, where: SeriesFilter, axis: Axis) -> Select[Any]:
    """(bucket, status, count) of the counted transitions in the window; empty buckets are
    absent. For every task, from the per-minute rollup (``series_counts``: a window of whole
    buckets is whole minutes, so it sums to exactly what the history holds). For a name or
    queue, from the history, joined to the task's row (the history has neither: the name
    and queue the fold decided, the same after a rebuild)."""
    tasks = _tasks(where)
    if not tasks:
        c = series_counts.c
        minutes = ((c.minute - literal(axis.origin)) // literal(axis.width)).label("bucket")
        window = [c.minute >= literal(axis.origin), c.minute < literal(axis.origin + axis.width * axis.count)]
        return select(minutes, c.status, cast(func.sum(c.count), BigInteger)).where(*window).group_by(minutes, c.status)
    source = task_event.join(task_meta, _t.task_id == _e.task_id)
    bucket = _bucket(database, _e.occurred_at, axis)
    return (
        select(bucket, _e.status, func.count()).select_from(source)
        .where(*_window(_e.occurred_at, axis), _e.status.in_([s.value for s in COUNTED]), *tasks)
        .group_by(bucket, _e.status)
    )  # fmt: skip


def runtimes_query(database: Database, where: SeriesFilter, axis: Axis) -> Select[Any]:
    """(bucket, p50, p95, p99) of the runtimes of the tasks that finished (succeeded or
    failed) in each bucket, by ``date_done``: the finishing attempt's runtime."""
    values = (
        select(_bucket(database, _t.date_done, axis), _t.runtime.label("value"))
        .where(*_window(_t.date_done, axis), _t.status.in_(_FINISHED), _t.runtime.is_not(None), *_tasks(where))
    ).subquery("runtimes")  # fmt: skip
    return database.nearest_ranks(values, PERCENTILES)


def waits_query(database: Database, where: SeriesFilter, axis: Axis) -> Select[Any]:
    """(bucket, p50, p95, p99) of the queue waits of the tasks received in each bucket,
    by ``date_received``."""
    values = (
        select(_bucket(database, _t.date_received, axis), _t.queue_wait.label("value"))
        .where(*_window(_t.date_received, axis), _t.queue_wait.is_not(None), *_tasks(where))
    ).subquery("waits")  # fmt: skip
    return database.nearest_ranks(values, PERCENTILES)
