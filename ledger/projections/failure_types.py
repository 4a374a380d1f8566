"""What the failure-group queries select and return (``ViewReader.failure_counts`` and
``failure_details``; assembled by ``failures.FailureQueries``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["Buckets", "FailureFilter", "GroupCounts", "GroupDetail"]


@dataclass(frozen=True, slots=True)
class FailureFilter:
    """Which failures count: ``since`` (inclusive) and ``until`` (exclusive) bound when the
    failure occurred; ``name`` is the task's name; ``fingerprint`` one group."""

    since: datetime | None = None
    until: datetime | None = None
    name: str | None = None
    fingerprint: str | None = None


@dataclass(frozen=True, slots=True)
class Buckets:
    """A trend's time axis: ``count`` buckets of ``width`` from ``origin``."""

    origin: datetime
    width: timedelta
    count: int

    def starts(self) -> list[datetime]:
        return [self.origin + self.width * i for i in range(self.count)]


@dataclass(frozen=True, slots=True)
class GroupCounts:
    """One group's aggregate over the filtered failures, with its operators' decisions."""

    fingerprint: str
    count: int
    tasks: int
    first_seen: datetime
    last_seen: datetime
    last_failure_at: datetime
    """The group's latest failure over all time (a recurrence after the window still reopens)."""
    resolved_at: datetime | None
    resolved_by: str | None
    reopened_at: datetime | None
    reopened_by: str | None


@dataclass(frozen=True, slots=True)
class GroupDetail:
    """A group's newest failure's event JSON (its name, type and message), the newest
    distinct task ids, and failures per trend bucket."""

    sample: bytes
    examples: list[str]
    trend: list[int]
