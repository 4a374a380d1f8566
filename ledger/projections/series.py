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


ARGUMENTS = ("bucket", "since", "until")


def utcnow() -> datetime:
    return datetime.now(UTC)


class SeriesQueries:
    """Reads of a series (``ViewReader.series_rows``)."""

    def __init__(self, reader: ViewReader, *, now: Callable[[], datetime] = utcnow) -> None:
        self.reader, self.now = reader, now

    def series(self, bucket: str, since: datetime, until: datetime | None = None, *, name: str | None = None,
               queue: str | None = None, names: tuple[str, str, str] = ARGUMENTS) -> Series:  # fmt: skip
        """The series of ``bucket`` over the whole buckets covering [since, until) (until:
        now), for the tasks of ``name`` and/or ``queue`` (all by default). Errors (ValueError)
        name the arguments as ``names`` (a caller's own option names)."""
        width = bucket_width(bucket, names[0])
        since, until = require_aware(since, names[1]), require_aware(until, names[2]) if until else self.now()
        window = axis(width, since, until, names=(names[1], names[2]))
        where = SeriesFilter(name=name, queue=queue)
        rows = self.reader.series_rows(where, window)
        points = build_points(window, rows.counts, rows.runtimes, rows.waits)
        return Series(bucket, window.start, window.end, name, queue, points)
