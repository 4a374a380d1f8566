"""Failure groups, the Python query API: failures grouped by fingerprint
(``domain.failures``) with their count, tasks affected, first and last seen, a trend over
the window, a few example task ids and whether the group is open or resolved.

The fingerprints are stored by the projector; the resolutions and reopens are events in
the log (``failures.resolved`` and ``failures.reopened``, emitted by
``Ledger.resolve_failure_group`` and ``Ledger.reopen_failure_group``): both come back the
same from a rebuild.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from ledger.domain.failures import is_fingerprint, is_open, mask_message
from ledger.projections.failure_types import Buckets, FailureFilter, GroupCounts, GroupDetail
from ledger.projections.store import ViewReader
from ledger.timeutil import require_aware

__all__ = ["FailureGroup", "FailureQueries"]

TREND_BUCKETS: Final = 12
EXAMPLES: Final = 5


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """One root cause: the failures sharing a fingerprint, within the window asked for."""

    fingerprint: str
    task_name: str | None
    exc_type: str
    message: str
    """The newest failure's message, masked as the fingerprint sees it."""
    count: int
    tasks: int
    first_seen: datetime
    last_seen: datetime
    status: Literal["open", "resolved"]
    resolved_at: datetime | None
    """The latest resolution; still set when a recurrence or a reopen reopened the group."""
    resolved_by: str | None
    reopened_at: datetime | None
    """The latest reopen by an operator (``failures.reopened``)."""
    reopened_by: str | None
    examples: list[str]
    trend: list[int]
    """Failures per bucket, oldest first: ``bucket_seconds`` wide from ``trend_start``."""
    trend_start: datetime
    bucket_seconds: float


def utcnow() -> datetime:
    return datetime.now(UTC)


class FailureQueries:
    """Reads of the failure groups (``ViewReader.failure_counts`` / ``failure_details``)."""

    def __init__(self, reader: ViewReader, *, now: Callable[[], datetime] = utcnow) -> None:
        self.reader, self.now = reader, now

    def groups(self, *, since: datetime | None = None, until: datetime | None = None, name: str | None = None,
               limit: int = 50, buckets: int = TREND_BUCKETS) -> list[FailureGroup]:  # fmt: skip
        """The groups of the failures that occurred in [since, until) (of task ``name``),
        the most recently failing first."""
        if not 1 <= limit <= 1000:
            raise ValueError(f"limit: must be between 1 and 1000, got {limit}")
        return self._answer(_filter(since, until, name, None), limit, buckets)

    def group(self, fingerprint: str, *, since: datetime | None = None, until: datetime | None = None,
              buckets: int = TREND_BUCKETS) -> FailureGroup | None:  # fmt: skip
        """One group by its fingerprint; None when no failure of it is in the window."""
        if not is_fingerprint(fingerprint):
            raise ValueError(f"fingerprint: must be 16 lowercase hex digits, got {fingerprint!r}")
        found = self._answer(_filter(since, until, None, fingerprint), 1, buckets)
        return found[0] if found else None

    def _answer(self, where: FailureFilter, limit: int, buckets: int) -> list[FailureGroup]:
        if not 1 <= buckets <= 1000:
            raise ValueError(f"buckets: must be between 1 and 1000, got {buckets}")
        counts = self.reader.failure_counts(where, limit)
        if not counts:
            return []
        axis = _axis(where, counts, self.now(), buckets)
        details = self.reader.failure_details(where, [c.fingerprint for c in counts], examples=EXAMPLES, buckets=axis)
        return [_group(c, details[c.fingerprint], axis) for c in counts if c.fingerprint in details]


def _filter(since: datetime | None, until: datetime | None, name: str | None, fingerprint: str | None) -> FailureFilter:
    if since is not None:
        require_aware(since, "since")
    if until is not None:
        require_aware(until, "until")
        if since is not None and until <= since:
            raise ValueError(f"until: must be after since ({since.isoformat()}), got {until.isoformat()}")
    return FailureFilter(since=since, until=until, name=name, fingerprint=fingerprint)


def _axis(where: FailureFilter, counts: list[GroupCounts], now: datetime, buckets: int) -> Buckets:
    """The trend spans the window; an open start begins at the earliest group's first
    failure, an open end at the latest failure or now, whichever is later."""
    origin = where.since or min(c.first_seen for c in counts)
    end = where.until or max(now, max(c.last_seen for c in counts) + timedelta(microseconds=1))
    width = max((end - origin) / buckets, timedelta(microseconds=1))
    return Buckets(origin, width, buckets)


def _group(counts: GroupCounts, detail: GroupDetail, axis: Buckets) -> FailureGroup:
    sample = json.loads(detail.sample)
    return FailureGroup(
        fingerprint=counts.fingerprint,
        task_name=sample.get("task_name"),
        exc_type=sample["exc_type"],
        message=mask_message(sample.get("exc_message")),
        count=counts.count,
        tasks=counts.tasks,
        first_seen=counts.first_seen,
        last_seen=counts.last_seen,
        status="open" if is_open(counts.last_failure_at, counts.resolved_at, counts.reopened_at) else "resolved",
        resolved_at=counts.resolved_at,
        resolved_by=counts.resolved_by,
        reopened_at=counts.reopened_at,
        reopened_by=counts.reopened_by,
        examples=detail.examples,
        trend=detail.trend,
        trend_start=axis.origin,
        bucket_seconds=axis.width.total_seconds(),
    )
