"""Trends, the Python query API: a time series per bucket (``domain.series.BUCKETS``) over
a window, for every task or one task name or queue: transitions counted per bucket
(published, started, succeeded, failed, retried, revoked) and runtime and queue-wait
p50/p95/p99.

Read straight from the history and the task rows (``series_sql``), so it is always
consistent with the log and a rebuild gives the same series.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ledger.domain.series import SeriesFilter, SeriesPoint, axis, bucket_width, build_points
from ledger.projections.store import ViewReader
from ledger.timeutil import require_aware

__all__ = ["Series", "SeriesQueries"]


@dataclass(frozen=True, slots=True)
class Series:
    """The buckets of [start, end), oldest first, each ``bucket`` wide."""

    bucket: str
    start: datetime
    end: datetime
    name: str | None
    queue: str | None
    points: list[SeriesPoint]


def utcnow() -> datetime:
    return datetime.now(UTC)


class SeriesQueries:
    """Reads of a series (``ViewReader.series_rows``)."""

    def __init__(self, reader: ViewReader, *, now: Callable[[], datetime] = utcnow) -> None:
        self.reader, self.now = reader, now

    def series(self, bucket: str, since: datetime, until: datetime | None = None, *, name: str | None = None,
               queue: str | None = None) -> Series:  # fmt: skip
        """The series of ``bucket`` over the whole buckets covering [since, until) (until:
        now), for the tasks of ``name`` and/or ``queue`` (all by default)."""
        width = bucket_width(bucket)
        window = axis(width, require_aware(since, "since"), require_aware(until, "until") if until else self.now())
        where = SeriesFilter(name=name, queue=queue)
        rows = self.reader.series_rows(where, window)
        points = build_points(window, rows.counts, rows.runtimes, rows.waits)
        return Series(bucket, window.start, window.end, name, queue, points)
