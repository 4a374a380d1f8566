"""Trends (``ViewReader.series_rows``, through ``SeriesQueries``): every reader gives the
same series, PostgreSQL and SQLite: the same counts per bucket (bucket edges to the
microsecond, duplicates once) and the same nearest-rank percentiles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ledger.domain.events import (
    AnyEvent,
    TaskEvent,
    TaskExpired,
    TaskFailed,
    TaskPending,
    TaskReceived,
    TaskRetried,
    TaskRevoked,
    TaskStarted,
    TaskSucceeded,
)
from ledger.domain.series import Percentiles, percentiles
from ledger.projections.series import Series, SeriesQueries
from ledger.projections.store import ViewReader, ViewWriter
from tests.contract.viewstore_contract import ViewsContract, project, rollup

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RUNTIMES = [0.5, 0.25, 2.0, 1.0, 8.0]


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def lifecycle(task_id: str, name: str, queue: str, minute: float, runtime: float, *, wait: float = 1.0,
              fail: bool = False) -> list[TaskEvent]:  # fmt: skip
    """Published at ``minute``, received ``wait`` s later, started, finished after ``runtime``."""
    kin = {"task_id": task_id, "task_name": name}
    start = at(minute) + timedelta(seconds=wait)
    end = start + timedelta(seconds=runtime)
    outcome: TaskEvent = (TaskFailed(**kin, exc_type="KeyError", runtime=runtime, occurred_at=end) if fail
                          else TaskSucceeded(**kin, runtime=runtime, occurred_at=end))  # fmt: skip
    published = TaskPending(**kin, queue=queue, occurred_at=at(minute))
    received = TaskReceived(**kin, queue=queue, occurred_at=start)
    return [published, received, TaskStarted(**kin, occurred_at=start), outcome]


def history() -> list[AnyEvent]:
    """Five tasks in minute 0 (one fails), one retried across minutes 1 to 2, one revoked in
    minute 3, and a publish one microsecond before minute 2 and one exactly at it."""
    first = [e for i, r in enumerate(RUNTIMES)
             for e in lifecycle(f"a-{i}", "app.a" if i < 3 else "app.b", "fast" if i % 2 else "slow", 0.1 * i, r,
                                wait=0.5 * (i + 1), fail=i == 4)]  # fmt: skip
    retried = {"task_id": "r-1", "task_name": "app.a"}
    edge = timedelta(microseconds=1)
    return [
        *first,
        TaskPending(**retried, queue="slow", occurred_at=at(1)),
        TaskStarted(**retried, occurred_at=at(1.5)),
        TaskRetried(**retried, exc_type="IOError", occurred_at=at(1.6)),
        TaskStarted(**retried, attempt=1, occurred_at=at(2.5)),
        TaskRevoked(task_id="v-1", task_name="app.b", occurred_at=at(3.2)),
        TaskPending(task_id="e-1", task_name="app.b", occurred_at=at(2) - edge),
        TaskPending(task_id="e-2", task_name="app.b", occurred_at=at(2)),
    ]


class SeriesContract(ViewsContract):
    def queries(self, reader: ViewReader) -> SeriesQueries:
        return SeriesQueries(reader, now=lambda: at(4))

    def series(self, reader: ViewReader, **filters: str) -> Series:
        return self.queries(reader).series("1m", at(0), at(4), **filters)

    def test_counts_per_bucket_to_the_microsecond(self, store: ViewWriter, reader: ViewReader) -> None:
        events = history()
        project(store, events)
        project(store, events[:7])  # redelivered: the same event ids, held once
        series = self.series(reader)
        assert (series.start, series.end, [p.start for p in series.points]) == (at(0), at(4), [at(m) for m in range(4)])
        counted = [(p.published, p.started, p.succeeded, p.failed, p.retried, p.revoked) for p in series.points]
        assert counted == [(5, 5, 4, 1, 0, 0), (2, 1, 0, 0, 1, 0), (1, 1, 0, 0, 0, 0), (0, 0, 0, 0, 0, 1)]

    def test_percentiles_are_the_nearest_rank_of_the_stored_values(self, store: ViewWriter, reader: ViewReader) -> None:
        project(store, history())
        first, *rest = self.series(reader).points
        assert first.runtime == percentiles(RUNTIMES) == Percentiles(1.0, 8.0, 8.0)
        assert first.queue_wait == percentiles([0.5, 1.0, 1.5, 2.0, 2.5])
        assert all(p.runtime == p.queue_wait == Percentiles() for p in rest)

    def test_a_name_or_a_queue_selects_its_tasks(self, store: ViewWriter, reader: ViewReader) -> None:
        project(store, history())
        by_name = self.series(reader, name="app.a").points
        assert [p.published for p in by_name] == [3, 1, 0, 0] and by_name[1].retried == 1
        assert by_name[0].runtime == percentiles(RUNTIMES[:3])
        fast = self.series(reader, queue="fast").points
        assert [p.published for p in fast] == [2, 0, 0, 0] and fast[0].runtime == percentiles([0.25, 1.0])
        both = self.series(reader, name="app.b", queue="fast").points
        assert [p.published for p in both] == [1, 0, 0, 0]
        assert self.series(reader, name="nobody").points[0].published == 0

    def test_the_rollup_is_the_history_counted_per_minute_through_duplicates_and_expiry(
        self, store: ViewWriter, reader: ViewReader
    ) -> None:
        events = history()
        project(store, events[:9])
        project(store, events[5:])  # a batch partly re-read: the same event ids, counted once
        before = rollup(store)
        assert sum(n for _, _, n in before) == 5 * 3 + 4 + 1 + 2  # RECEIVED is not counted
        assert before[0] == (int(T0.timestamp()), "DONE", 4)
        expire = TaskExpired(task_id="a-0", expired_before=at(60), occurred_at=at(61))
        project(store, [expire, TaskPending(task_id="late", occurred_at=at(0.5))])
        after = rollup(store)  # a-0 gone (3 counted events), late published
        assert sum(n for _, _, n in after) == sum(n for _, _, n in before) - 3 + 1
        assert self.series(reader).points[0].published == 5

    def test_bad_arguments_name_the_field(self, reader: ViewReader) -> None:
        queries = self.queries(reader)
        with pytest.raises(ValueError, match=r"^bucket: must be one of"):
            queries.series("90s", at(0))
        with pytest.raises(ValueError, match=r"^since: must be timezone-aware"):
            queries.series("1m", datetime(2026, 3, 1))
        with pytest.raises(ValueError, match=r"^until: must be after since"):
            queries.series("1m", at(5))
