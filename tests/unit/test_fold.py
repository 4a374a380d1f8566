"""The task fold: order-independent, duplicate-proof, and a late event never moves the
status backwards. Realistic lifecycles are generated and replayed shuffled many times."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain.events import (
    Emitter,
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
from ledger.domain.fold import (
    GAP_FIELDS,
    STATUS_DATES,
    STATUS_GROUP,
    TaskState,
    evolve,
    expires,
    fold,
    is_late,
    rank,
)
from ledger.domain.statuses import TaskStatus
from ledger.domain.timing import DURATIONS

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
Logged = list[tuple[TaskEvent, int | None]]


@st.composite
def lifecycles(draw: st.DrawFn) -> list[TaskEvent]:
    """pending → received → started → [retried → received → started]* → an outcome, with
    consistent name/args, increasing timestamps, and each field carried only sometimes."""
    task_id = draw(st.sampled_from(["t-1", "add:42", "ümlaut-task"]))
    name, args = (
        draw(st.sampled_from(["tasks.add", "tasks.mul"])),
        draw(st.lists(st.integers(), max_size=3)),
    )
    clock = [T0]
    linkage = {"root_id": "root", "parent_id": "parent", "group_id": draw(st.sampled_from(["g1", "g2"])),
               "callback_id": "cb", "queue": draw(st.sampled_from(["celery", "high"])), "routing_key": "rk",
               "exchange": "", "expires": T0 + timedelta(days=1)}  # fmt: skip

    def common(attempt: int) -> dict[str, Any]:
        clock[0] += timedelta(milliseconds=draw(st.integers(1, 10_000)))
        return {
            "task_id": task_id,
            "attempt": attempt,
            "occurred_at": clock[0],
            "task_name": name if draw(st.booleans()) else None,
            "args": args if draw(st.booleans()) else None,
            "emitter": Emitter(host=draw(st.sampled_from(["w1", "w2"])), pid=1),
            **{field: value for field, value in linkage.items() if draw(st.booleans())},
        }

    events: list[TaskEvent] = [
        TaskPending(**common(0)),
        TaskReceived(**common(0)),
        TaskStarted(**common(0)),
    ]
    retries = draw(st.integers(0, 3))
    for attempt in range(retries):
        events.append(TaskRetried(**common(attempt), exc_type="IOError", countdown=1.0))
        events += [TaskReceived(**common(attempt + 1)), TaskStarted(**common(attempt + 1))]
    outcome = draw(st.sampled_from(["failed", "succeeded", "revoked"]))
    last = common(retries)
    if outcome == "failed":
        events.append(TaskFailed(**last, exc_type="ValueError", exc_message="bad", runtime=0.5))
    elif outcome == "succeeded":
        events.append(TaskSucceeded(**last, result={"sum": 3}, runtime=0.25))
    else:
        events.append(TaskRevoked(**last, reason="user", terminated=True))
    return events


def logged(events: list[TaskEvent]) -> Logged:
    """Events with the offsets the log gave them: a shuffle moves them together."""
    return [(event, offset) for offset, event in enumerate(events, start=10)]


def ignoring_positions(state: TaskState | None) -> TaskState:
    """The state without what depends on log positions (the last offset, and which event
    came first in the log)."""
    assert state is not None
    return dataclasses.replace(state, last_offset=None, first_seen=T0)


def evolve_all(pairs: Logged) -> TaskState | None:
    state = None
    for event, offset in pairs:
        state = evolve(state, event, offset)
    return state


@settings(max_examples=200)
@given(events=lifecycles(), data=st.data())
def test_any_permutation_folds_to_the_same_state(
    events: list[TaskEvent], data: st.DataObject
) -> None:
    original = logged(events)
    shuffled = data.draw(st.permutations(original))
    assert fold(shuffled) == fold(original)
    assert fold(list(reversed(original))) == fold(original)
    # A shuffled delivery gets new positions: only what follows from positions may differ.
    redelivered = [(event, position) for position, (event, _) in enumerate(shuffled)]
    assert ignoring_positions(fold(redelivered)) == ignoring_positions(fold(original))
    state = fold(redelivered)
    assert state is not None and state.first_seen == shuffled[0][0].occurred_at
    assert fold([(event, None) for event, _ in shuffled]) == evolve_all([(e, None) for e in events])


@settings(max_examples=200)
@given(events=lifecycles(), data=st.data())
def test_duplicates_change_nothing(events: list[TaskEvent], data: st.DataObject) -> None:
    original = logged(events)
    again = data.draw(st.lists(st.sampled_from(original), min_size=1, max_size=8))
    reappended = [(event, 1000 + i) for i, (event, _) in enumerate(again)]  # later positions
    mixed = data.draw(st.permutations(original + reappended + again))
    assert fold(mixed) == fold(original)


@settings(max_examples=100)
@given(events=lifecycles())
def test_in_order_evolve_equals_fold(events: list[TaskEvent]) -> None:
    pairs = logged(events)
    state = evolve_all(pairs)
    assert state == fold(pairs)
    assert state is not None
    top, offset = pairs[-1]
    assert (state.status, state.date_done, state.last_event_id) == (
        top.status,
        top.occurred_at,
        top.event_id,
    )
    assert (state.retries, state.last_offset) == (top.attempt, offset)


@settings(max_examples=100)
@given(events=lifecycles())
def test_is_late_exactly_when_the_event_ranks_below_the_top(events: list[TaskEvent]) -> None:
    pairs = logged(events)
    assert not is_late(None, events[0])
    for index in range(1, len(events)):
        state = evolve_all(pairs[:index])
        assert not is_late(state, events[index])  # in order: never late
        assert not is_late(state, events[index - 1])  # the top itself again: a duplicate
        assert all(is_late(state, earlier) for earlier in events[: index - 1])


@settings(max_examples=100)
@given(events=lifecycles(), data=st.data())
def test_a_late_received_never_changes_status_but_fills_gaps(
    events: list[TaskEvent], data: st.DataObject
) -> None:
    anonymous = [event.model_copy(update={"task_name": None}) for event in events]
    finished = fold(logged(anonymous))
    assert finished is not None and finished.name is None
    last = events[-1]
    late = TaskReceived(
        task_id=last.task_id,
        attempt=last.attempt,
        task_name="tasks.late",
        occurred_at=last.occurred_at + timedelta(seconds=data.draw(st.integers(-60, 60))),
    )
    assert is_late(finished, late)
    for state in (fold([*logged(anonymous), (late, 999)]), evolve(finished, late, 999)):
        assert state is not None
        assert state.status == finished.status and state.status is not TaskStatus.RECEIVED
        assert state.date_done == finished.date_done
        assert state.last_event_id == finished.last_event_id
        assert state.name == "tasks.late"


def ev(cls: type[TaskEvent], seconds: int, attempt: int = 0, **fields: Any) -> Any:
    return cls(task_id="t", attempt=attempt, occurred_at=T0 + timedelta(seconds=seconds), **fields)


def test_the_status_group_is_replaced_as_a_whole_including_nones() -> None:
    retried = ev(TaskRetried, 1, exc_type="IOError", exc_message="disk", traceback="tb")
    started = ev(TaskStarted, 2, attempt=1)
    state = fold([(retried, 0), (started, 1)])
    assert state is not None
    assert (state.status, state.retries, state.exc_type, state.exc_message) == (
        "STARTED",
        1,
        None,
        None,
    )


def test_gap_fields_come_from_the_highest_ranked_event_carrying_them() -> None:
    pending = ev(TaskPending, 0, task_name="old", args=[1], eta=T0)
    received = ev(TaskReceived, 1, task_name="new")
    state = fold([(received, 1), (pending, 0)])
    assert state is not None
    assert (state.name, state.args, state.eta) == ("new", [1], T0)
    assert (state.date_pending, state.date_received, state.date_started) == (
        T0,
        received.occurred_at,
        None,
    )


def test_linkage_and_routing_come_from_whichever_event_carries_them() -> None:
    pending = ev(TaskPending, 0, root_id="r", parent_id="p", queue="celery", routing_key="celery",
                 expires=T0 + timedelta(hours=1))  # fmt: skip
    received = ev(TaskReceived, 1, group_id="g", callback_id="cb", exchange="tasks")
    started = ev(TaskStarted, 2, queue="high")  # a later event's value wins (re-routed)
    for pairs in ([(pending, 0), (received, 1), (started, 2)], [(started, 2), (received, 1), (pending, 0)]):
        state = fold(pairs)
        assert state is not None
        assert (state.root_id, state.parent_id, state.group_id, state.callback_id) == ("r", "p", "g", "cb")
        assert (state.queue, state.exchange, state.routing_key) == ("high", "tasks", "celery")
        assert state.expires == T0 + timedelta(hours=1)


def test_timings_are_derived_from_the_dates_in_any_order() -> None:
    pending, received, started = ev(TaskPending, 0), ev(TaskReceived, 3), ev(TaskStarted, 4)
    done = ev(TaskSucceeded, 10, runtime=6.0)
    for pairs in ([(pending, 0), (received, 1), (started, 2), (done, 3)],
                  [(done, 3), (started, 2), (pending, 0), (received, 1)]):  # fmt: skip
        state = fold(pairs)
        assert state is not None
        assert (state.queue_wait, state.start_delay, state.total_time, state.runtime) == (3.0, 1.0, 10.0, 6.0)
    running = evolve(evolve(evolve(None, pending), received), started)
    assert (running.queue_wait, running.start_delay, running.total_time) == (3.0, 1.0, None)  # not finished
    only_started = fold([(started, 0)])
    assert only_started is not None and only_started.queue_wait is None and only_started.start_delay is None


def test_a_timing_is_never_negative_when_clocks_disagree() -> None:
    state = fold([(ev(TaskPending, 5), 0), (ev(TaskReceived, 2), 1)])  # the worker's clock is behind
    assert state is not None and state.queue_wait == 0.0


def test_worker_is_the_emitters_worker_or_host() -> None:
    named = ev(TaskStarted, 0, emitter=Emitter(host="h", pid=1, worker="celery@h"))
    bare = ev(TaskSucceeded, 1, emitter=Emitter(host="h2", pid=2))
    assert evolve(None, named).worker == "celery@h"
    assert evolve(evolve(None, named), bare).worker == "h2"


def test_outcomes_of_one_attempt_are_ordered_by_time() -> None:
    done, revoked = ev(TaskSucceeded, 5, result=1), ev(TaskRevoked, 6)
    for order in ([done, revoked], [revoked, done]):
        state = fold([(event, None) for event in order])
        assert state is not None and state.status is TaskStatus.REVOKED


def test_a_later_attempt_outranks_an_earlier_outcome() -> None:
    failed = ev(TaskFailed, 100, exc_type="E")
    received = ev(TaskReceived, 1, attempt=1)  # earlier clock, later attempt
    state = fold([(failed, 0), (received, 1)])
    assert state is not None and state.status is TaskStatus.RECEIVED and state.retries == 1


def test_an_expiry_removes_a_finished_task_and_later_events_start_it_afresh() -> None:
    done = ev(TaskSucceeded, 1, result=7)
    expiry = ev(TaskExpired, 2, expired_before=T0 + timedelta(days=1))
    assert expires(evolve(None, done, 0), expiry)
    assert fold([(done, 0), (expiry, 1)]) is None
    assert fold([(expiry, 1), (done, 0)]) is None  # given in any order: it acts where it stands in the log
    again = ev(TaskReceived, 3, attempt=1)
    revived = fold([(done, 0), (expiry, 1), (again, 2)])
    assert revived == evolve(None, again, 2)  # afresh: first_seen too
    with pytest.raises(ValueError, match="an expiry removes a task"):
        evolve(evolve(None, done, 0), expiry, 1)


def test_an_expiry_never_removes_a_live_or_young_task() -> None:
    started, retried = ev(TaskStarted, 1), ev(TaskRetried, 2)
    expiry = ev(TaskExpired, 3, expired_before=T0 + timedelta(days=1))
    racing = fold([(started, 0), (retried, 1), (expiry, 2)])  # a RETRY is not finished
    assert racing == fold([(started, 0), (retried, 1)]) and racing is not None
    before_done = fold([(ev(TaskReceived, 1), 0), (expiry, 1), (ev(TaskSucceeded, 4), 2)])
    assert before_done is not None and before_done.status is TaskStatus.DONE  # it was not finished then
    young = ev(TaskExpired, 3, expired_before=T0)  # the task changed after the cut-off
    assert not expires(evolve(None, ev(TaskSucceeded, 1), 0), young)


def test_duplicate_keeps_the_earliest_offset() -> None:
    started = ev(TaskStarted, 1)
    assert evolve(evolve(None, started, 9), started, 4).last_offset == 4
    assert evolve(evolve(None, started, 4), started, 9).last_offset == 4
    assert fold([(started, None), (started, 7)]) == evolve(None, started, 7)


def test_first_seen_is_the_time_of_the_first_event_in_the_log_and_never_moves() -> None:
    """The sort key of listings: whatever later events say, and whatever their clocks."""
    pending = ev(TaskPending, 10)
    started = ev(TaskStarted, 5)  # a worker whose clock is behind
    done = ev(TaskSucceeded, -3600, attempt=5)  # much further behind, and a later attempt
    state = evolve(None, pending, 0)
    for event, offset in ((started, 1), (done, 2)):
        state = evolve(state, event, offset)
        assert state.first_seen == pending.occurred_at
    assert state.date_done == done.occurred_at
    assert fold([(done, 2), (started, 1), (pending, 0)]) == state
    late = ev(TaskReceived, -7200)  # ranks below the top: the projector refolds
    assert is_late(state, late)
    refolded = fold([(late, 3), (pending, 0), (done, 2), (started, 1)])
    assert refolded is not None and refolded.first_seen == pending.occurred_at
    unknown = fold([(started, 4), (pending, None)])  # an unknown offset counts after known ones
    assert unknown is not None and unknown.first_seen == started.occurred_at
    unranked = fold([(started, None), (pending, None)])  # none known: the lowest-ranked event
    assert unranked is not None and unranked.first_seen == pending.occurred_at


def test_empty_history_folds_to_none_and_tasks_cannot_mix() -> None:
    assert fold([]) is None
    other = TaskStarted(task_id="other")
    with pytest.raises(ValueError, match="task_id"):
        evolve(evolve(None, ev(TaskStarted, 0)), other)
    with pytest.raises(ValueError, match="task_id"):
        fold([(ev(TaskStarted, 0), 0), (other, 1)])


def test_every_state_field_has_exactly_one_rule() -> None:
    """The rules are data: each column is status group, gap, status date, or identity."""
    names = [f.name for f in dataclasses.fields(TaskState)]
    ruled = [*STATUS_GROUP, *GAP_FIELDS, *STATUS_DATES.values(), *DURATIONS, "task_id", "first_seen"]
    assert sorted(ruled) == sorted(names)


@given(st.uuids(), st.uuids())
def test_rank_orders_event_ids_as_their_strings(a: UUID, b: UUID) -> None:
    first, second = ev(TaskStarted, 0, event_id=a), ev(TaskStarted, 0, event_id=b)
    assert (rank(first) < rank(second)) == (str(a) < str(b))
