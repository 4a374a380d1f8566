"""The failure-group queries, written once for both databases: a window's groups are one
GROUP BY over the partial index of the failures (``task_event.fingerprint``, set by the
projector); a group's examples, sample and trend are two more queries for the groups shown
(at most a page of them).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Select, and_, func, literal, select, union_all

from ledger.projections.failure_types import Buckets, FailureFilter
from ledger.projections.schema import failure_resolution, task_event, task_meta
from ledger.projections.sql import Database
from ledger.projections.sqltypes import UtcTimestamp

__all__ = ["counts_query", "examples_query", "trend_query"]

_e = task_event.c


def _failures(where: FailureFilter) -> tuple[FromClause, list[ColumnElement[bool]]]:
    """The failures ``where`` selects: the history's rows with a fingerprint, joined to
    their task's row only when filtered by name (the history has no name column)."""
    source: FromClause = task_event
    clauses: list[ColumnElement[bool]] = [_e.fingerprint.is_not(None)]
    if where.fingerprint is not None:
        clauses.append(_e.fingerprint == where.fingerprint)
    if where.since is not None:
        clauses.append(_e.occurred_at >= literal(where.since, UtcTimestamp))
    if where.until is not None:
        clauses.append(_e.occurred_at < literal(where.until, UtcTimestamp))
    if where.name is not None:
        source = task_event.join(task_meta, task_meta.c.task_id == _e.task_id)
        clauses.append(task_meta.c.name == where.name)
    return source, clauses


def counts_query(where: FailureFilter, limit: int) -> Select[Any]:
    """Per group: count, distinct tasks, first and last seen in the window, the latest
    failure ever (a recurrence after the window reopens too) and the decisions; the most
    recently failing groups first."""
    source, clauses = _failures(where)
    groups = (
        select(_e.fingerprint, func.count().label("n"), func.count(_e.task_id.distinct()).label("tasks"),
               func.min(_e.occurred_at).label("first_seen"), func.max(_e.occurred_at).label("last_seen"))
        .select_from(source).where(*clauses).group_by(_e.fingerprint).subquery("groups")
    )  # fmt: skip
    latest = task_event.alias("latest")
    last_failure = select(func.max(latest.c.occurred_at)).where(latest.c.fingerprint == groups.c.fingerprint)
    r = failure_resolution.c
    return (
        select(groups.c.fingerprint, groups.c.n, groups.c.tasks, groups.c.first_seen, groups.c.last_seen,
               last_failure.scalar_subquery().label("last_failure_at"), r.resolved_at, r.resolved_by,
               r.reopened_at, r.reopened_by)
        .select_from(groups.outerjoin(failure_resolution, r.fingerprint == groups.c.fingerprint))
        .order_by(groups.c.last_seen.desc(), groups.c.fingerprint).limit(limit)
    )  # fmt: skip


def examples_query(where: FailureFilter, fingerprints: Collection[str], per_group: int) -> Select[Any]:
    """The newest ``per_group`` failures of each group (task id and event JSON), newest first:
    one top-N per group, each a backward walk of ``task_event_failure_group_idx`` (its order,
    (occurred_at, task_id), is the index's, so no group's failures are all read and sorted)."""
    source, clauses = _failures(where)
    newest = [
        select(_e.fingerprint, _e.task_id, _e.payload, _e.occurred_at).select_from(source)
        .where(*clauses, _e.fingerprint == fingerprint)
        .order_by(_e.occurred_at.desc(), _e.task_id.desc()).limit(per_group).subquery()
        for fingerprint in sorted(fingerprints)
    ]  # fmt: skip
    both = union_all(*(select(part) for part in newest)).subquery("newest")
    return (
        select(both.c.fingerprint, both.c.task_id, both.c.payload)
        .order_by(both.c.fingerprint, both.c.occurred_at.desc(), both.c.task_id.desc())
    )  # fmt: skip


def trend_query(database: Database, where: FailureFilter, fingerprints: Collection[str],
                buckets: Buckets) -> Select[Any]:  # fmt: skip
    """Failures per (group, bucket index) inside the trend's span; empty buckets absent."""
    source, clauses = _failures(where)
    end = buckets.origin + buckets.width * buckets.count
    origin = buckets.origin.timestamp()
    offset = database.epoch_seconds(_e.occurred_at) - literal(origin)
    index = database.floor(offset / literal(buckets.width.total_seconds())).label("bucket")
    span = and_(_e.occurred_at >= literal(buckets.origin, UtcTimestamp), _e.occurred_at < literal(end, UtcTimestamp))
    return (
        select(_e.fingerprint, index, func.count()).select_from(source)
        .where(*clauses, span, database.members(_e.fingerprint, fingerprints))
        .group_by(_e.fingerprint, index)
    )  # fmt: skip
