"""Since when an unfinished task counts as waiting (the rule behind ``ledger stuck``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ledger.domain.events import TaskPending, TaskReceived, TaskStarted, TaskSucceeded
from ledger.domain.fold import evolve
from ledger.domain.waiting import waiting_since

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_an_unfinished_task_waits_from_its_last_status_change() -> None:
    pending = evolve(None, TaskPending(task_id="t", occurred_at=T0))
    assert waiting_since(pending) == T0
    started = evolve(pending, TaskStarted(task_id="t", occurred_at=T0 + HOUR))
    assert waiting_since(started) == T0 + HOUR


def test_a_task_held_for_its_eta_waits_from_its_eta() -> None:
    ahead = evolve(None, TaskPending(task_id="t", occurred_at=T0, eta=T0 + HOUR))
    assert waiting_since(ahead) == T0 + HOUR
    received = evolve(ahead, TaskReceived(task_id="t", occurred_at=T0 + timedelta(minutes=1)))
    assert waiting_since(received) == T0 + HOUR  # a worker holds it until its ETA
    already_past = evolve(None, TaskPending(task_id="t", occurred_at=T0, eta=T0 - HOUR))
    assert waiting_since(already_past) == T0


def test_a_finished_task_does_not_wait() -> None:
    done = evolve(None, TaskSucceeded(task_id="t", occurred_at=T0))
    assert waiting_since(done) is None
    assert waiting_since(evolve(done, TaskPending(task_id="t", occurred_at=T0, eta=T0 + HOUR))) is None
