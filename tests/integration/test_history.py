"""Time travel and replay on both backends: as-of states and counts from the stored history
(checked against the domain fold of the events), stuck tasks, a stored task's timeline, and
replaying windows of the log by record time and by position."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from ledger.codec import PLAIN
from ledger.consumers.replay import Replayed, replay
from ledger.domain.events import (
    AnyEvent,
    Emitter,
    TaskEvent,
    TaskPending,
    TaskReceived,
    TaskRetried,
    TaskRevoked,
    TaskStarted,
    TaskSucceeded,
)
from ledger.domain.fold import fold
from ledger.domain.statuses import READY_STATES, TaskStatus
from ledger.eventlog.base import EventLog, LogRecord
from ledger.projections.history import as_of, stuck_tasks
from ledger.projections.store import ViewReader, ViewWriter
from ledger.projections.timeline import build_timeline
from ledger.settings import Settings, ViewsBackend
from ledger.wire import encode
from tests.streams import T0, append_all, expected_views, project_all, stream

W1 = Emitter(host="worker-1.example", pid=1001, worker="celery@worker-1")
W2 = Emitter(host="worker-2.example", pid=1002, worker="celery@worker-2")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def retried_task(task_id: str = "retried-1") -> list[AnyEvent]:
    """Attempt 0 retried, attempt 1 done, then a late RECEIVED (after DONE by the clock too)
    delivered last."""
    common: dict[str, Any] = {"task_id": task_id, "task_name": "billing.charge"}
    return [
        TaskPending(**common, occurred_at=at(0), emitter=Emitter(host="api.example", pid=7)),
        TaskReceived(**common, occurred_at=at(1), emitter=W1),
        TaskStarted(**common, occurred_at=at(2), emitter=W1),
        TaskRetried(**common, occurred_at=at(3), emitter=W1, exc_type="KeyError", exc_message="'id'"),
        TaskReceived(**common, attempt=1, occurred_at=at(5), emitter=W2),
        TaskStarted(**common, attempt=1, occurred_at=at(6), emitter=W2),
        TaskSucceeded(**common, attempt=1, occurred_at=at(7), emitter=W2, result={"ok": True}),
        TaskReceived(**common, attempt=1, occurred_at=at(8), emitter=W2),
    ]


def test_as_of_shows_the_task_at_each_instant_of_its_life(
    settings: Settings, log: EventLog, store: ViewWriter, reader: ViewReader
) -> None:
    events = retried_task()
    append_all(log, [*events, TaskPending(task_id="other", occurred_at=at(0))])
    project_all(settings)
    assert as_of(reader, "retried-1", at(-0.001)) is None
    assert as_of(reader, "never-seen", at(100)) is None
    first = as_of(reader, "retried-1", at(0))  # occurred_at <= at: inclusive
    assert first is not None and first.status is TaskStatus.PENDING
    mid_retry = as_of(reader, "retried-1", at(3.5))
    assert mid_retry is not None and (mid_retry.status, mid_retry.retries) == (TaskStatus.RETRY, 0)
    assert mid_retry.exc_type == "KeyError" and mid_retry.worker == "celery@worker-1"
    second = as_of(reader, "retried-1", at(6.5))
    assert second is not None and (second.status, second.retries, second.exc_type) == (TaskStatus.STARTED, 1, None)
    done = as_of(reader, "retried-1", at(7.5))
    assert done is not None and (done.status, done.retries, done.result) == (TaskStatus.DONE, 1, {"ok": True})
    assert done.date_received == at(5)
    after_late = as_of(reader, "retried-1", at(9))  # the late RECEIVED moves its date, not the status
    assert after_late is not None and after_late.status is TaskStatus.DONE
    assert (after_late.date_done, after_late.date_received) == (at(7), at(8))
    assert after_late == reader.task_state("retried-1")  # the whole history folds to the live row
    with pytest.raises(ValueError, match="until: must be timezone-aware"):
        as_of(reader, "retried-1", datetime(2026, 3, 1, 2, 0))


def test_the_timeline_of_a_stored_retried_task(
    settings: Settings, log: EventLog, store: ViewWriter, reader: ViewReader
) -> None:
    events = retried_task()
    positions = append_all(log, events)
    project_all(settings)
    assert [r.offset for r in reader.task_events("retried-1", until=at(3))] == [p.offset for p in positions[:4]]
    timeline = build_timeline(reader.task_events("retried-1"))
    assert [e.event_id for e in timeline.entries] == [e.event_id for e in events]
    assert [(e.position.partition, e.position.offset) for e in timeline.entries] == [
        (p.partition, p.offset) for p in positions
    ]
    statuses = [(e.status_before, e.status_after, e.late) for e in timeline.entries]
    P, R, S, RT, D = (TaskStatus.PENDING, TaskStatus.RECEIVED, TaskStatus.STARTED, TaskStatus.RETRY, TaskStatus.DONE)
    assert statuses == [
        (None, P, False), (P, R, False), (R, S, False), (S, RT, False),
        (RT, R, False), (R, S, False), (S, D, False), (D, D, True),
    ]  # fmt: skip
    assert [e.emitter.worker for e in timeline.entries][3:5] == ["celery@worker-1", "celery@worker-2"]
    assert timeline.gaps == [] and timeline.in_progress is False


def tied_outcomes() -> list[AnyEvent]:
    """Tasks DONE and REVOKED in the same microsecond: the higher event id wins (REVOKED,
    REVOKED, DONE: a reversed or missing tie-break changes the counts)."""
    events: list[AnyEvent] = []
    for task_id, done_id, revoked_id in (("tie-a", 1, 2**127), ("tie-b", 5, 9), ("tie-c", 2**126, 3)):
        events.append(TaskSucceeded(task_id=task_id, occurred_at=at(4), event_id=UUID(int=done_id), emitter=W1))
        events.append(TaskRevoked(task_id=task_id, occurred_at=at(4), event_id=UUID(int=revoked_id), emitter=W1))
    return events


def brute_force_counts(events: list[AnyEvent], moment: datetime) -> dict[TaskStatus, int]:
    """Fold each task's events that occurred by ``moment`` and count the statuses."""
    by_task: dict[str, list[tuple[TaskEvent, int | None]]] = defaultdict(list)
    for event in events:
        if isinstance(event, TaskEvent) and event.occurred_at <= moment:
            by_task[event.task_id].append((event, None))
    states = (fold(pairs) for pairs in by_task.values())
    return dict(Counter(s.status for s in states if s is not None))


def test_status_counts_as_of_match_the_fold_of_the_events_by_then(
    settings: Settings, log: EventLog, store: ViewWriter, reader: ViewReader
) -> None:
    events = [*stream(seed=41, tasks=150), *retried_task(), *tied_outcomes()]
    append_all(log, events)
    project_all(settings)
    times = sorted(e.occurred_at for e in events if isinstance(e, TaskEvent))
    instants = [times[0] - timedelta(seconds=1), times[0], *(times[len(times) * k // 8] for k in range(1, 8))]
    instants += [at(3.5), at(6.5), at(7.5), at(9), times[-1] + timedelta(hours=1)]  # retried_task's life
    busiest = 0
    for moment in instants:
        expected = brute_force_counts(events, moment)
        assert reader.status_counts_as_of(moment) == expected, moment
        busiest = max(busiest, len(expected))
    assert busiest >= 4  # some instant caught tasks in several statuses at once
    assert reader.status_counts_as_of(instants[0]) == {}
    assert reader.status_counts_as_of(instants[-1]) == reader.status_counts()


def test_stuck_tasks_are_exactly_the_unfinished_ones_older_than_the_threshold(
    settings: Settings, log: EventLog, reader: ViewReader
) -> None:
    now = T0 + timedelta(hours=1)
    extra: list[AnyEvent] = [
        TaskStarted(task_id="stuck-started", occurred_at=T0 - timedelta(hours=1), emitter=W1),
        TaskRetried(task_id="stuck-retry", occurred_at=T0 - timedelta(hours=1), emitter=W1),
        TaskPending(task_id="stuck-pending", occurred_at=T0 - timedelta(hours=2)),
        TaskStarted(task_id="fresh-started", occurred_at=now - timedelta(minutes=1), emitter=W1),
        TaskSucceeded(task_id="old-done", occurred_at=T0 - timedelta(hours=1), emitter=W1),
    ]
    events = [*stream(seed=42, tasks=150), *extra]
    positions = append_all(log, events)
    project_all(settings)
    tasks, _ = expected_views(events, positions)
    cutoff = now - timedelta(minutes=30)
    unfinished = [s for s in tasks.values() if s.status not in READY_STATES and s.date_done < cutoff]
    expected = [s.task_id for s in sorted(unfinished, key=lambda s: (s.date_done, s.task_id))]
    assert len(expected) >= 5 and {"stuck-started", "stuck-retry", "stuck-pending"} <= set(expected)
    found = stuck_tasks(reader, timedelta(minutes=30), now, page_size=2)  # many pages
    assert [s.task_id for s in found] == expected
    assert found == [tasks[t] for t in expected]
    assert [s.task_id for s in stuck_tasks(reader, timedelta(minutes=30), now)] == expected
    assert "fresh-started" in {s.task_id for s in stuck_tasks(reader, timedelta(0), now)}
    with pytest.raises(ValueError, match="older_than"):
        stuck_tasks(reader, timedelta(minutes=-1), now)


def test_a_task_waiting_for_its_eta_is_not_stuck(settings: Settings, log: EventLog, reader: ViewReader) -> None:
    """Issue 12, defect 13: a task scheduled for later waits from its ETA, not from when it
    was sent; once the ETA is long past with nothing happening, it is stuck."""
    now = T0 + timedelta(hours=1)
    append_all(log, [
        TaskPending(task_id="eta-ahead", occurred_at=now - timedelta(minutes=5), eta=now + timedelta(hours=1)),
        TaskReceived(task_id="eta-ahead-received", occurred_at=now - timedelta(hours=2), eta=now + timedelta(hours=1)),
        TaskPending(task_id="eta-just-passed", occurred_at=now - timedelta(hours=3), eta=now - timedelta(minutes=5)),
        TaskPending(task_id="eta-long-passed", occurred_at=now - timedelta(hours=3), eta=now - timedelta(hours=2)),
        TaskPending(task_id="no-eta", occurred_at=now - timedelta(minutes=90)),
        TaskPending(task_id="eta-before-sent", occurred_at=now - timedelta(minutes=80), eta=now - timedelta(hours=4)),
    ])  # fmt: skip
    project_all(settings)
    assert [s.task_id for s in stuck_tasks(reader, timedelta(seconds=10), now)] == [
        "eta-long-passed",  # waiting since its ETA, two hours ago
        "no-eta",
        "eta-before-sent",  # an ETA before it was even sent: waiting since it was sent
        "eta-just-passed",
    ]
    assert [s.task_id for s in stuck_tasks(reader, timedelta(minutes=30), now)] == [
        "eta-long-passed",
        "no-eta",
        "eta-before-sent",
    ]


def test_replay_windows_by_record_time_and_by_position(log: EventLog) -> None:
    first = stream(seed=43, tasks=8, periodic=0, duplicates=0, late=0)
    second = stream(seed=44, tasks=8, periodic=0, duplicates=0, late=0)
    first_positions = append_all(log, first)
    after_first = log.end_offsets()
    time.sleep(0.15)
    between = datetime.now(UTC)
    time.sleep(0.15)
    junk = LogRecord(key="junk", value=b"not json")
    log.append([*(encode(e) for e in second[:5]), junk, *(encode(e) for e in second[5:])])

    def ids(items: Iterator[Any]) -> list[str]:
        return [str(r.event.event_id) if r.event is not None else f"error: {r.error}" for r in items]

    def per_partition(items: Iterator[Replayed]) -> dict[int, list[int]]:
        """Offsets read from each partition, in the order read (partitions may interleave)."""
        read: dict[int, list[int]] = defaultdict(list)
        for item in items:
            read[item.record.partition].append(item.record.offset)
        return dict(read)

    later = list(replay(log, PLAIN, since=between))
    assert sorted(ids(iter(later))) == sorted([str(e.event_id) for e in second] + ["error: value: not valid JSON"])
    bad = [r for r in later if r.event is None]
    assert len(bad) == 1 and bad[0].record.value == b"not json" and bad[0].error == "value: not valid JSON"
    for partition, offsets in per_partition(iter(later)).items():  # contiguous, in log order
        assert offsets == list(range(after_first[partition], after_first[partition] + len(offsets)))
    assert per_partition(replay(log, PLAIN, start=after_first)) == per_partition(iter(later))
    earlier = ids(replay(log, PLAIN, until=between))
    assert sorted(earlier) == sorted(str(e.event_id) for e in first)
    assert ids(replay(log, PLAIN, since=between, until=between)) == []
    middle = {p.partition: p.offset + 1 for p in first_positions[:3]}
    from_middle = list(replay(log, PLAIN, start=middle, until=between))
    kept = zip(first, first_positions, strict=True)
    expected = {str(e.event_id) for e, p in kept if p.offset >= middle.get(p.partition, 0)}
    assert set(ids(iter(from_middle))) == expected and len(from_middle) == len(expected)
    with pytest.raises(ValueError, match="since, start"):
        replay(log, PLAIN, since=between, start="beginning")
    with pytest.raises(ValueError, match="until: must be timezone-aware"):
        replay(log, PLAIN, until=datetime(2026, 3, 1))


def test_migration_0002_adds_the_as_of_index(settings: Settings, store: ViewWriter) -> None:
    """``store`` ran ``migrate()``: the time-travel index must be there on either backend."""
    if settings.views_backend is ViewsBackend.POSTGRES:
        import psycopg2

        conn = psycopg2.connect(settings.postgres_dsn)
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s", (settings.postgres_schema,))
                names = {n for (n,) in cur.fetchall()}
        finally:
            conn.close()
    else:
        with closing(sqlite3.connect(settings.data_dir / "views.db")) as lite:
            names = {n for (n,) in lite.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "task_event_rank_idx" in names
    assert store.migrate() == []  # applied once, recorded
