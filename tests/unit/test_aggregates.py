from __future__ import annotations

from uuid import uuid5

import pytest

from ledger.domain.aggregates import (
    TASK_NAMESPACE,
    TRANSITIONS,
    InvalidTransition,
    PeriodicTask,
    TaskRun,
)
from ledger.domain.events import (
    PeriodicTaskRegistered,
    PeriodicTaskTriggered,
    PeriodicTaskUnregistered,
    TaskEvent,
    TaskPending,
    TaskReceived,
    TaskRetried,
    TaskStarted,
    TaskSucceeded,
)
from ledger.domain.fold import fold
from ledger.domain.periodic import fold_periodic
from ledger.domain.statuses import READY_STATES, TaskStatus


def test_transition_table_covers_every_status_and_finished_ones_lead_nowhere() -> None:
    assert set(TRANSITIONS) == {None, *TaskStatus}
    assert all(TRANSITIONS[status] == frozenset() for status in READY_STATES)
    assert TaskStatus.STARTED in TRANSITIONS[TaskStatus.RETRY]


def test_a_run_with_a_retry_becomes_ledger_events_with_attempts() -> None:
    run = TaskRun("job-1", name="tasks.add", args=[1, 2], kwargs={"z": 3})
    assert run.id == uuid5(TASK_NAMESPACE, "job-1")
    run.enqueue()
    run.receive()
    run.start()
    run.retry(exc_type="IOError", exc_message="disk", countdown=2.0)
    assert (run.status, run.attempt) == (TaskStatus.RETRY, 1)
    run.receive()
    run.start()
    run.succeed(result={"sum": 3}, runtime=0.5)
    events = run.to_ledger_events()
    steps = [TaskPending, TaskReceived, TaskStarted, TaskRetried, TaskReceived, TaskStarted]
    assert [type(e) for e in events] == [*steps, TaskSucceeded]
    assert [e.attempt for e in events if isinstance(e, TaskEvent)] == [0, 0, 0, 0, 1, 1, 1]
    assert all(isinstance(e, TaskEvent) and e.task_id == "job-1" for e in events)
    retried, done = events[3], events[-1]
    assert (
        isinstance(retried, TaskRetried)
        and retried.countdown == 2.0
        and retried.exc_type == "IOError"
    )
    assert isinstance(done, TaskSucceeded) and done.result == {"sum": 3} and done.runtime == 0.5
    assert events[0].args == [1, 2] and events[0].kwargs == {"z": 3}  # type: ignore[union-attr]
    assert len({e.event_id for e in events}) == len(events)
    assert run.to_ledger_events() == []  # collected once


def test_the_runs_events_fold_to_its_state() -> None:
    run = TaskRun("job-2", name="tasks.mul")
    run.receive()
    run.start()
    run.fail(exc_type="ZeroDivisionError", exc_message="division by zero", runtime=0.1)
    events = run.to_ledger_events()
    state = fold([(e, None) for e in events if isinstance(e, TaskEvent)])
    assert state is not None
    assert (state.status, state.name, state.exc_type) == (
        TaskStatus.FAILURE,
        "tasks.mul",
        "ZeroDivisionError",
    )
    assert state.date_done == events[-1].occurred_at


@pytest.mark.parametrize("finish", ["fail", "succeed", "revoke"])
def test_nothing_leaves_a_finished_run(finish: str) -> None:
    run = TaskRun("job-3")
    run.start()
    if finish == "fail":
        run.fail("ValueError")
    else:
        getattr(run, finish)()
    for step in (run.start, run.receive, run.enqueue, run.retry, run.succeed, run.revoke):
        with pytest.raises(InvalidTransition, match=r"cannot go from .* none: it is finished"):
            step()
    assert len(run.to_ledger_events()) == 2  # the refused steps recorded nothing


def test_impossible_steps_are_refused_with_a_clear_message() -> None:
    run = TaskRun("job-4")
    with pytest.raises(InvalidTransition, match="'job-4': cannot go from nothing recorded to DONE"):
        run.succeed(1)
    run.enqueue()
    with pytest.raises(InvalidTransition, match="from PENDING to RETRY"):
        run.retry()
    assert run.status is TaskStatus.PENDING and run.attempt == 0


def test_periodic_task_delay_counts_runs_like_the_seed() -> None:
    periodic = PeriodicTask("nightly", "reports.build", 86_400.0)
    periodic.delay("run-1")
    periodic.delay("run-2")
    assert periodic.total_run_count == 2 and periodic.last_run_at is not None
    periodic.disable("retired")
    with pytest.raises(InvalidTransition, match="disabled"):
        periodic.delay("run-3")
    with pytest.raises(InvalidTransition, match="already disabled"):
        periodic.disable()
    events = periodic.to_ledger_events()
    trigger_type = PeriodicTaskTriggered
    assert [type(e) for e in events] == [
        PeriodicTaskRegistered, trigger_type, trigger_type, PeriodicTaskUnregistered
    ]  # fmt: skip
    trigger = events[2]
    assert isinstance(trigger, PeriodicTaskTriggered) and trigger.task_id == "run-2"
    assert trigger.task == "reports.build" and trigger.occurred_at == periodic.last_run_at
    state = fold_periodic([e for e in events if not isinstance(e, TaskEvent)])
    assert state is not None
    assert (state.total_run_count, state.last_run_task_id, state.enabled) == (2, "run-2", False)


def test_an_untranslatable_step_loses_nothing() -> None:
    run = TaskRun("", name="tasks.nameless")  # the wire rules refuse an empty task id
    run.start()
    with pytest.raises(ValueError, match="task_id"):
        run.to_ledger_events()
    assert len(run.pending_events) == 2  # still there to fix or inspect


def test_periodic_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval_seconds"):
        PeriodicTask("bad", "x", 0)
