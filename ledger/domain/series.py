"""Trends: the rules of a time series of task activity, pure.

A series covers whole buckets of one fixed width (``BUCKETS``), each starting at a multiple
of its width since the Unix epoch, so every caller and both databases cut time the same
way: a bucket's index is a whole number of seconds divided by a whole number of seconds,
never a float. Per bucket it counts the transitions recorded (``COUNTED``) and gives
runtime and queue-wait percentiles by the nearest-rank rule (``percentile``): an actual
stored value, never an interpolation, so both databases answer with the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Final

from ledger.domain.statuses import TaskStatus

__all__ = ["BUCKETS", "COUNTED", "MAX_BUCKETS", "PERCENTILES", "Axis", "Percentiles", "SeriesFilter", "SeriesPoint",
           "axis", "bucket_width", "build_points", "nearest_rank", "percentile", "percentiles"]  # fmt: skip

BUCKETS: Final[Mapping[str, int]] = MappingProxyType(
    {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "1d": 86400}
)
"""The bucket widths a series may use, in seconds."""
MAX_BUCKETS: Final = 10_080
"""A week of minutes: a longer series is a wider bucket's job (and would not fit a screen)."""
COUNTED: Final[Mapping[TaskStatus, str]] = MappingProxyType({
    TaskStatus.PENDING: "published", TaskStatus.STARTED: "started", TaskStatus.DONE: "succeeded",
    TaskStatus.FAILURE: "failed", TaskStatus.RETRY: "retried", TaskStatus.REVOKED: "revoked",
})  # fmt: skip
"""The transitions a series counts per bucket (history rows of that status), by name."""
PERCENTILES: Final = (50, 95, 99)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def bucket_width(text: str, option: str = "bucket") -> int:
    """A bucket's width in seconds; ValueError naming ``option`` and the choices otherwise."""
    width = BUCKETS.get(text)
    if width is None:
        raise ValueError(f"{option}: must be one of {', '.join(BUCKETS)}, got {text!r}")
    return width


def epoch_seconds(moment: datetime) -> int:
    """Whole seconds since the epoch, rounded down (as the databases compute it per row)."""
    return (moment - _EPOCH) // timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Axis:
    """``count`` buckets of ``width`` seconds; the first starts ``origin`` seconds after the
    epoch (a multiple of ``width``)."""

    origin: int
    width: int
    count: int

    @property
    def start(self) -> datetime:
        return _EPOCH + timedelta(seconds=self.origin)

    @property
    def end(self) -> datetime:
        return _EPOCH + timedelta(seconds=self.origin + self.width * self.count)

    def starts(self) -> list[datetime]:
        return [_EPOCH + timedelta(seconds=self.origin + self.width * i) for i in range(self.count)]

    def index(self, moment: datetime) -> int:
        """The bucket of ``moment`` (the same integer arithmetic as the databases')."""
        return (epoch_seconds(moment) - self.origin) // self.width


def axis(width: int, since: datetime, until: datetime, *, names: tuple[str, str] = ("since", "until")) -> Axis:
    """The whole buckets covering [since, until): from the start of ``since``'s bucket to
    the end of the bucket holding the last instant before ``until``. Errors name ``since``
    and ``until`` as ``names`` (the caller's option names)."""
    if until <= since:
        raise ValueError(f"{names[1]}: must be after {names[0]} ({since.isoformat()}), got {until.isoformat()}")
    origin = epoch_seconds(since) // width * width
    last = epoch_seconds(until - timedelta(microseconds=1)) // width * width
    count = (last - origin) // width + 1
    if count > MAX_BUCKETS:
        raise ValueError(f"{names[0]}: the window holds {count} buckets of {width} s, more than {MAX_BUCKETS}: "
                         "use a wider bucket or a shorter window")  # fmt: skip
    return Axis(origin, width, count)


def nearest_rank(count: int, share: int) -> int:
    """The 1-based rank of the ``share`` % percentile among ``count`` (>= 1) sorted values:
    ceil(share * count / 100) in integers. The databases apply this same rule
    (``Database.nearest_ranks``: this formula in SQL, or PostgreSQL's ``percentile_disc``,
    which is the same rule)."""
    return max(1, (share * count + 99) // 100)


def percentile(ordered: Sequence[float], share: int) -> float | None:
    """Nearest rank: the smallest value with at least ``share`` % of ``ordered`` (sorted
    ascending) at or below it; None when there are no values. Exact, and always a value
    that was stored, so every backend gives the same number."""
    if not ordered:
        return None
    return ordered[nearest_rank(len(ordered), share) - 1]


@dataclass(frozen=True, slots=True)
class Percentiles:
    """p50/p95/p99 of one bucket's values, in seconds (None: no value in the bucket)."""

    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


def percentiles(values: Iterable[float]) -> Percentiles:
    ordered = sorted(values)
    return Percentiles(*(percentile(ordered, share) for share in PERCENTILES))


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One bucket: when it starts, transitions counted in it, and the percentiles of the
    runtimes of the tasks that finished in it and of the queue waits of those received in it."""

    start: datetime
    published: int = 0
    started: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    revoked: int = 0
    runtime: Percentiles = field(default_factory=Percentiles)
    queue_wait: Percentiles = field(default_factory=Percentiles)


@dataclass(frozen=True, slots=True)
class SeriesFilter:
    """Which tasks a series covers: all, or those of one task name and/or one queue."""

    name: str | None = None
    queue: str | None = None


PercentileRow = tuple[int, float | None, float | None, float | None]
"""(bucket, p50, p95, p99) as the databases give them."""


def build_points(axis: Axis, counts: Iterable[tuple[int, str, int]], runtimes: Iterable[PercentileRow],
                 waits: Iterable[PercentileRow]) -> list[SeriesPoint]:  # fmt: skip
    """Every bucket of ``axis`` (empty ones too) from (bucket, status, count) rows and
    (bucket, p50, p95, p99) rows; rows outside the axis are ignored."""
    tallies: list[dict[str, int]] = [{} for _ in range(axis.count)]
    for index, status, n in counts:
        label = COUNTED.get(TaskStatus(status))
        if label is not None and 0 <= index < axis.count:
            tallies[index][label] = tallies[index].get(label, 0) + n
    run, wait = _by_bucket(runtimes, axis.count), _by_bucket(waits, axis.count)
    return [
        SeriesPoint(start, **tallies[i], runtime=run[i], queue_wait=wait[i]) for i, start in enumerate(axis.starts())
    ]


def _by_bucket(rows: Iterable[PercentileRow], count: int) -> list[Percentiles]:
    found = [Percentiles()] * count
    for index, p50, p95, p99 in rows:
        if 0 <= index < count:
            found[index] = Percentiles(p50, p95, p99)
    return found
