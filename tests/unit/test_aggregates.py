"""The emit side's rules: what a run may do next, and the ids of the events it records."""

from __future__ import annotations

import pytest

from ledger.domain.aggregates import (
    TRANSITIONS,
    InvalidTransition,
    PeriodicTask,
    TaskRun,
    may_follow,
    step_event_id,
    trigger_event_id,
)
from ledger.domain.events import (
    PeriodicTaskRegistered,
    PeriodicTaskTriggered,
    PeriodicTaskUnregistered,
)
from ledger.domain.periodic import fold_periodic
from ledger.domain.statuses import READY_STATES, TaskStatus

S = TaskStatus


def walk(run: TaskRun, *steps: tuple[TaskStatus, int | None]) -> list[tuple[TaskStatus, int]]:
    taken = []
    for status, attempt in steps:
        step = run.plan(status, attempt)
        run.take(step)
        taken.append((step.status, step.attempt))
    return taken


def test_within_an_attempt_a_run_only_moves_forward_and_nothing_follows_an_outcome() -> None:
    assert TRANSITIONS[None] == frozenset(TaskStatus)  # a first step may be any step
    assert TRANSITIONS[S.PENDING] == {S.RECEIVED, S.STARTED, S.RETRY, S.FAILURE, S.DONE, S.REVOKED}
    assert TRANSITIONS[S.STARTED] == {S.RETRY, S.FAILURE, S.DONE, S.REVOKED}
    assert all(TRANSITIONS[status] == frozenset() for status in (*READY_STATES, S.RETRY))
    assert not may_follow(S.STARTED, S.RECEIVED) and may_follow(S.PENDING, S.DONE)  # skips are other processes'


def test_a_retry_moves_the_run_to_the_next_attempt() -> None:
    run = TaskRun("t")
    steps = walk(run, (S.RECEIVED, None), (S.STARTED, None), (S.RETRY, None), (S.RECEIVED, None), (S.STARTED, None),
                 (S.DONE, None))  # fmt: skip
    assert [a for _, a in steps] == [0, 0, 0, 1, 1, 1]
    assert run.finished == (S.DONE, 1)


def test_celerys_order_a_retry_recorded_after_the_next_attempts_publish_is_allowed() -> None:
    run = TaskRun("t")
    walk(run, (S.STARTED, 0), (S.PENDING, 1), (S.RETRY, 0), (S.STARTED, 1))
    assert run.attempt == 1 and run.statuses == {0: S.RETRY, 1: S.STARTED}
    with pytest.raises(InvalidTransition, match=r"cannot go from RETRY to STARTED at attempt 0 \(allowed: none: "):
        run.plan(S.STARTED, 0)


@pytest.mark.parametrize(
    ("steps", "refused", "message"),
    [
        ([S.RECEIVED, S.STARTED, S.DONE], S.DONE, r"task 't' is finished \(DONE at attempt 0\): cannot record DONE"),
        ([S.STARTED, S.FAILURE], S.RETRY, r"is finished \(FAILURE at attempt 0\): cannot record RETRY"),
        ([S.PENDING, S.REVOKED], S.STARTED, r"is finished \(REVOKED at attempt 0\): cannot record STARTED"),
        ([S.PENDING, S.STARTED], S.RECEIVED, r"cannot go from STARTED to RECEIVED at attempt 0 \(allowed: "),
    ],
)
def test_impossible_steps_are_refused_naming_both_states(
    steps: list[TaskStatus], refused: TaskStatus, message: str
) -> None:
    run = TaskRun("t")
    walk(run, *((status, None) for status in steps))
    with pytest.raises(InvalidTransition, match=message):
        run.plan(refused)
    assert run.plan is not None and len(run.statuses) == 1  # nothing changed by the refusal


def test_event_ids_come_from_the_step_so_the_same_transition_is_one_event() -> None:
    first, again = TaskRun("t"), TaskRun("t")  # two processes recording the same task
    assert first.plan(S.STARTED, 2).event_id == again.plan(S.STARTED, 2).event_id == step_event_id("t", S.STARTED, 2)
    distinct = {step_event_id(t, s, a) for t in ("t", "u") for s in (S.STARTED, S.DONE) for a in (0, 1)}
    assert len(distinct) == 8


def test_periodic_task_delay_counts_runs_like_the_seed() -> None:
    periodic = PeriodicTask("nightly")
    periodic.register("reports.build", 86_400.0)
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
    assert trigger.event_id == trigger_event_id("nightly", "run-2")
    assert trigger.task == "reports.build" and trigger.occurred_at == periodic.last_run_at
    state = fold_periodic(events)
    assert state is not None
    assert (state.total_run_count, state.last_run_task_id, state.enabled) == (2, "run-2", False)
    assert periodic.to_ledger_events() == []  # translated once


def test_an_entry_registered_elsewhere_may_run_and_its_interval_must_be_positive() -> None:
    elsewhere = PeriodicTask("hourly")
    elsewhere.delay("run-1")
    assert elsewhere.enabled is None and elsewhere.total_run_count == 1
    with pytest.raises(ValueError, match="interval_seconds"):
        PeriodicTask("bad").register("x", 0)


def test_step_ids_are_uuid5_of_the_joined_parts() -> None:
    from uuid import uuid5

    from ledger.domain.aggregates import TASK_NAMESPACE

    assert step_event_id("t-1", S.RETRY, 3) == uuid5(TASK_NAMESPACE, "t-1\x00RETRY\x003")
    assert step_event_id("t-1", S.RETRY, 3).version == 5
    for task_id in ("t-1", "é", "x" * 255, "00000000-0000-0000-0000-000000000000"):
        for status in S:
            made, spelt = step_event_id(task_id, status, 7), uuid5(TASK_NAMESPACE, f"{task_id}\x00{status}\x007")
            assert (made, str(made), hash(made), made.version, made.variant, made.is_safe) == (
                spelt, str(spelt), hash(spelt), 5, spelt.variant, spelt.is_safe)  # fmt: skip
