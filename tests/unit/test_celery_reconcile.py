"""A result backend's record of a task the ledger shows unfinished → the outcome event,
marked as reconciled, with the id the step's own event would have had."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.contrib.celery_events import CeleryEventTranslator
from ledger.contrib.celery_reconcile import SOURCE, outcome
from ledger.domain.aggregates import step_event_id
from ledger.domain.events import TaskFailed, TaskPending, TaskRetried, TaskRevoked, TaskSucceeded
from ledger.domain.fold import fold
from ledger.domain.statuses import TaskStatus
from ledger.domain.task_state import TaskState
from ledger.payloads import InvalidEvent

DONE_AT = "2026-03-01T12:00:05.250000+00:00"


def pending(task_id: str = "t-1", retried: int = 0) -> TaskState:
    events: list[Any] = [(TaskPending(task_id=task_id, task_name="shop.sync"), 0)]
    events += [(TaskRetried(task_id=task_id, attempt=a, exc_type="E"), a + 1) for a in range(retried)]
    state = fold(events)
    assert state is not None
    return state


def test_a_success_is_the_done_step_with_the_stored_result_and_time() -> None:
    meta = {"status": "SUCCESS", "result": {"total": 3}, "date_done": DONE_AT, "task_id": "t-1"}
    event = outcome(pending(), meta)
    assert isinstance(event, TaskSucceeded)
    assert (event.result, event.task_name, event.reconciled_from) == ({"total": 3}, "shop.sync", SOURCE)
    assert event.occurred_at == datetime(2026, 3, 1, 12, 0, 5, 250000, tzinfo=UTC)
    assert event.event_id == step_event_id("t-1", TaskStatus.DONE, 0)


def test_a_failure_is_described_as_the_celery_events_route_describes_it() -> None:
    stored = {"exc_type": "ValueError", "exc_message": ["no stock"], "exc_module": "builtins"}
    event = outcome(pending(retried=2), {"status": "FAILURE", "result": stored, "traceback": "Traceback…",
                                         "date_done": "2026-03-01T12:00:05"})  # fmt: skip
    heard = CeleryEventTranslator().translate({"type": "task-failed", "uuid": "t-1", "timestamp": 1.0, "retries": 2,
                                               "exception": "ValueError('no stock')"})  # fmt: skip
    assert isinstance(event, TaskFailed) and isinstance(heard, TaskFailed)
    assert (event.exc_type, event.exc_message, event.exc_args) == (heard.exc_type, heard.exc_message, heard.exc_args)
    assert (event.attempt, event.traceback) == (2, "Traceback…")  # the attempt the ledger is at
    assert event.event_id == heard.event_id  # heard later from another ingester: held once
    assert event.occurred_at.tzinfo is not None  # a naive date_done is UTC, as Celery stores it


def test_a_pickled_exception_and_a_revocation() -> None:
    failed = outcome(pending(), {"status": "FAILURE", "result": KeyError("sku", 7)})
    assert isinstance(failed, TaskFailed)
    assert (failed.exc_type, failed.exc_args, failed.exc_message) == ("KeyError", ["sku", 7], "sku, 7")
    revoked = outcome(pending(), {"status": "REVOKED", "result": {"exc_type": "TaskRevokedError",
                                                                  "exc_message": ["revoked"]}})  # fmt: skip
    assert isinstance(revoked, TaskRevoked) and revoked.reason == "revoked"


@pytest.mark.parametrize("status", ["PENDING", "STARTED", "RETRY", "RECEIVED", None, "SOMETHING"])
def test_what_is_not_an_outcome_is_left_alone(status: str | None) -> None:
    assert outcome(pending(), {"status": status, "result": None}) is None


def test_the_backends_retries_count_when_it_knows_more_attempts() -> None:
    event = outcome(pending(retried=1), {"status": "SUCCESS", "result": 1, "retries": 3})
    assert event is not None and event.attempt == 3
    older = outcome(pending(retried=1), {"status": "SUCCESS", "result": 1, "retries": 0})
    assert older is not None and older.attempt == 1


def test_a_record_that_makes_no_valid_event_names_the_field() -> None:
    with pytest.raises(InvalidEvent, match=r"^exc_type: "):
        outcome(pending(), {"status": "FAILURE", "result": {"exc_type": "", "exc_message": []}})
