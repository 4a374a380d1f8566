"""The task timeline: log-order entries with before/after statuses, late events marked,
emitters shown, and every kind of gap found (and nothing else flagged)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from ledger.domain.events import (
    AnyEvent,
    Emitter,
    PeriodicTaskRegistered,
    TaskEvent,
    TaskFailed,
    TaskPending,
    TaskReceived,
    TaskRetried,
    TaskStarted,
    TaskSucceeded,
)
from ledger.domain.statuses import TaskStatus
from ledger.eventlog.base import Position
from ledger.projections.rows import Decoded, history_row
from ledger.projections.store import HistoryRow
from ledger.projections.timeline import GapKind, build_timeline

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
API = Emitter(host="api.example", pid=7)
W1 = Emitter(host="worker-1.example", pid=1001, worker="celery@worker-1")
W2 = Emitter(host="worker-2.example", pid=1002, worker="celery@worker-2")
P, R, S, RT, D, F = (
    TaskStatus.PENDING,
    TaskStatus.RECEIVED,
    TaskStatus.STARTED,
    TaskStatus.RETRY,
    TaskStatus.DONE,
    TaskStatus.FAILURE,
)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rows(*events: TaskEvent | PeriodicTaskRegistered, partition: int = 2) -> list[HistoryRow]:
    """History rows as the projector stores them, at consecutive offsets from 10."""
    return [history_row(Decoded(cast("AnyEvent", e), partition, 10 + i)) for i, e in enumerate(events)]


def ev(cls: type[TaskEvent], seconds: float, attempt: int = 0, emitter: Emitter = W1, **extra: Any) -> TaskEvent:
    return cls(task_id="t-1", attempt=attempt, occurred_at=at(seconds), emitter=emitter, **extra)


def retried_then_done() -> list[TaskEvent]:
    return [
        ev(TaskPending, 0, emitter=API),
        ev(TaskReceived, 1),
        ev(TaskStarted, 2),
        ev(TaskRetried, 3, exc_type="KeyError"),
        ev(TaskReceived, 5, attempt=1, emitter=W2),
        ev(TaskStarted, 6, attempt=1, emitter=W2),
        ev(TaskSucceeded, 7, attempt=1, emitter=W2, result=1),
    ]


def test_entries_follow_log_order_with_statuses_before_and_after_and_who_sent_them() -> None:
    history = rows(*retried_then_done())
    timeline = build_timeline(list(reversed(history)))  # given in any order: sorted by position
    assert timeline.task_id == "t-1"
    assert [e.position for e in timeline.entries] == [Position(2, 10 + i) for i in range(7)]
    assert [(e.status_before, e.status_after) for e in timeline.entries] == [
        (None, P), (P, R), (R, S), (S, RT), (RT, R), (R, S), (S, D),
    ]  # fmt: skip
    assert [e.attempt for e in timeline.entries] == [0, 0, 0, 0, 1, 1, 1]
    assert [e.type for e in timeline.entries][3:5] == ["task.retried", "task.received"]
    assert [e.occurred_at for e in timeline.entries] == [at(s) for s in (0, 1, 2, 3, 5, 6, 7)]
    assert timeline.entries[0].emitter == API and timeline.entries[1].emitter == W1
    assert timeline.entries[-1].emitter.worker == "celery@worker-2" and timeline.entries[-1].emitter.pid == 1002
    assert [e.event_id for e in timeline.entries] == [r.event_id for r in history]
    assert not any(e.late for e in timeline.entries)
    assert timeline.gaps == [] and timeline.in_progress is False


def test_a_late_event_is_marked_and_leaves_the_status_unchanged() -> None:
    events = retried_then_done()
    late_received = ev(TaskReceived, 8, attempt=1, emitter=W2)  # after DONE by the clock
    stale_start = ev(TaskStarted, 2.5)  # attempt 0, delivered after that attempt's RETRY
    timeline = build_timeline(rows(*events, late_received, stale_start))
    late = [e for e in timeline.entries if e.late]
    assert [e.event_id for e in late] == [late_received.event_id, stale_start.event_id]
    assert all(e.status_before == e.status_after == D for e in late)
    assert late[0].status is R and late[1].status is S
    assert timeline.in_progress is False and timeline.gaps == []


def test_celerys_retry_order_is_not_late() -> None:
    """Celery publishes the next attempt (PENDING, attempt 1) before the worker reports the
    RETRY of attempt 0: normal, so nothing is late; the RETRY cannot move the status back."""
    events = [
        ev(TaskPending, 0, emitter=API), ev(TaskStarted, 2), ev(TaskPending, 3, attempt=1, emitter=API),
        ev(TaskRetried, 3.1, exc_type="KeyError"), ev(TaskStarted, 5, attempt=1), ev(TaskSucceeded, 6, attempt=1),
    ]  # fmt: skip
    timeline = build_timeline(rows(*events))
    assert not any(e.late for e in timeline.entries)
    assert [e.status_after for e in timeline.entries] == [P, S, P, P, S, D]


def test_out_of_order_delivery_is_late_only_where_it_ranks_below() -> None:
    started, received = ev(TaskStarted, 2), ev(TaskReceived, 1)  # STARTED delivered first
    timeline = build_timeline(rows(ev(TaskPending, 0), started, received))
    assert [(e.status_after, e.late) for e in timeline.entries] == [(P, False), (S, False), (S, True)]
    assert timeline.in_progress is True and timeline.gaps == []


def test_the_latest_attempt_without_an_outcome_is_in_progress_not_a_gap() -> None:
    events = retried_then_done()[:-1]  # attempt 1 started, no outcome yet
    timeline = build_timeline(rows(*events))
    assert timeline.in_progress is True
    assert timeline.gaps == []
    assert timeline.entries[-1].status_after is S


def test_a_task_waiting_for_its_retry_is_in_progress() -> None:
    timeline = build_timeline(rows(*retried_then_done()[:4]))
    assert timeline.in_progress is True and timeline.gaps == []


def test_an_earlier_attempt_without_a_terminal_event_is_a_gap() -> None:
    events = [e for e in retried_then_done() if not isinstance(e, TaskRetried)]
    timeline = build_timeline(rows(*events))
    assert [(g.kind, g.attempt) for g in timeline.gaps] == [(GapKind.UNFINISHED_ATTEMPT, 0)]
    assert timeline.gaps[0].message == "attempt 0 has no terminal event"
    assert timeline.in_progress is False


def test_a_skipped_attempt_is_a_gap() -> None:
    events = [*retried_then_done()[:4], ev(TaskReceived, 9, attempt=2), ev(TaskStarted, 9.5, attempt=2)]
    events.append(ev(TaskFailed, 10, attempt=2, exc_type="ValueError"))
    timeline = build_timeline(rows(*events))
    assert [(g.kind, g.attempt) for g in timeline.gaps] == [(GapKind.MISSING_ATTEMPT, 1)]
    assert timeline.entries[-1].status_after is F and timeline.in_progress is False


def test_started_without_received_in_the_same_attempt_is_a_gap() -> None:
    events = [e for e in retried_then_done() if not (isinstance(e, TaskReceived) and e.attempt == 1)]
    timeline = build_timeline(rows(*events))
    assert [(g.kind, g.attempt) for g in timeline.gaps] == [(GapKind.STARTED_WITHOUT_RECEIVED, 1)]
    # a RECEIVED of another attempt does not count for this one
    assert "attempt 1" in timeline.gaps[0].message


def test_no_pending_anywhere_is_one_gap_for_the_task() -> None:
    events = retried_then_done()[1:]
    timeline = build_timeline(rows(*events))
    assert [(g.kind, g.attempt) for g in timeline.gaps] == [(GapKind.NO_PENDING, 0)]


def test_a_pending_of_any_attempt_counts_and_gaps_are_reported_together() -> None:
    late_pending = ev(TaskPending, 4, attempt=1, emitter=API)
    events = [ev(TaskStarted, 2), late_pending, ev(TaskStarted, 6, attempt=1)]
    timeline = build_timeline(rows(*events))
    assert [(g.kind, g.attempt) for g in timeline.gaps] == [
        (GapKind.STARTED_WITHOUT_RECEIVED, 0),
        (GapKind.UNFINISHED_ATTEMPT, 0),
        (GapKind.STARTED_WITHOUT_RECEIVED, 1),
    ]
    no_pending = build_timeline(rows(ev(TaskStarted, 2), ev(TaskSucceeded, 3)))
    assert [g.kind for g in no_pending.gaps] == [GapKind.NO_PENDING, GapKind.STARTED_WITHOUT_RECEIVED]


def test_bad_input_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="at least one event"):
        build_timeline([])
    other = TaskPending(task_id="t-2", occurred_at=at(1))
    with pytest.raises(ValueError, match="mixed"):
        build_timeline(rows(ev(TaskPending, 0), other))
    periodic = PeriodicTaskRegistered(name="t-1", task="x", interval_seconds=60, occurred_at=at(0))
    with pytest.raises(ValueError, match="not a task event"):
        build_timeline(rows(periodic))


def test_an_outcome_read_afterwards_is_marked_and_says_the_steps_before_it_are_unknown() -> None:
    read = ev(TaskSucceeded, 9, result=1, reconciled_from="celery result backend")
    timeline = build_timeline(rows(ev(TaskPending, 0, emitter=API), read))
    assert [e.reconciled_from for e in timeline.entries] == [None, "celery result backend"]
    assert timeline.entries[-1].status_after is D and not timeline.in_progress
    (gap,) = timeline.gaps
    assert (gap.kind, gap.attempt) == (GapKind.RECONCILED, 0)
    assert gap.message == ("attempt 0: DONE was read from the celery result backend, not seen happen: "
                           "the steps before it are unknown")  # fmt: skip
