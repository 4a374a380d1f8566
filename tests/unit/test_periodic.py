from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain.events import (
    PeriodicTaskEvent,
    PeriodicTaskRegistered,
    PeriodicTaskTriggered,
    PeriodicTaskUnregistered,
)
from ledger.domain.periodic import PeriodicState, evolve_periodic, fold_periodic

T0 = datetime(2024, 5, 1, tzinfo=UTC)
NAME = "nightly-report"


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


# Few distinct minutes, so equal timestamps (ties broken by event id) are common.
minutes = st.integers(0, 5)
registered = st.builds(
    PeriodicTaskRegistered,
    name=st.just(NAME),
    task=st.sampled_from(["reports.build", "reports.build_v2"]),
    interval_seconds=st.sampled_from([60.0, 3600.0]),
    occurred_at=minutes.map(at),
)
unregistered = st.builds(PeriodicTaskUnregistered, name=st.just(NAME), occurred_at=minutes.map(at))
triggered = st.builds(
    PeriodicTaskTriggered,
    name=st.just(NAME),
    task_id=st.uuids().map(str),
    occurred_at=minutes.map(at),
)
histories = st.lists(st.one_of(registered, unregistered, triggered), min_size=1, max_size=12)


def evolve_all(events: list[PeriodicTaskEvent]) -> PeriodicState | None:
    state = None
    for event in events:
        state = evolve_periodic(state, event)
    return state


def newest(events: list[PeriodicTaskEvent]) -> PeriodicTaskEvent:
    return max(events, key=lambda e: (e.occurred_at, e.event_id))


@settings(max_examples=200)
@given(events=histories, data=st.data())
def test_periodic_fold_is_order_independent(
    events: list[PeriodicTaskEvent], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(events))
    assert fold_periodic(shuffled) == fold_periodic(events)
    assert evolve_all(shuffled) == fold_periodic(events)


@settings(max_examples=200)
@given(events=histories, data=st.data())
def test_periodic_fold_matches_the_rules(
    events: list[PeriodicTaskEvent], data: st.DataObject
) -> None:
    duplicated = events + data.draw(st.lists(st.sampled_from(events), max_size=5))
    state = fold_periodic(data.draw(st.permutations(duplicated)))
    assert state is not None and state.name == NAME
    runs = [e for e in events if isinstance(e, PeriodicTaskTriggered)]
    registrations = [e for e in events if isinstance(e, PeriodicTaskRegistered)]
    configs = [e for e in events if not isinstance(e, PeriodicTaskTriggered)]
    assert state.total_run_count == len(runs)  # duplicates counted once
    if runs:
        last_run = newest(list(runs))
        assert isinstance(last_run, PeriodicTaskTriggered)
        assert (state.last_run_at, state.last_run_task_id) == (
            last_run.occurred_at,
            last_run.task_id,
        )
    if registrations:
        latest = newest(list(registrations))
        assert isinstance(latest, PeriodicTaskRegistered)
        assert (state.task, state.interval_seconds) == (latest.task, latest.interval_seconds)
    else:
        assert (state.task, state.interval_seconds) == (None, None)
    if configs:
        assert state.enabled == isinstance(newest(configs), PeriodicTaskRegistered)
        assert state.config_event_id == newest(configs).event_id
    assert state.last_event_id == newest(events).event_id


def test_the_seeds_delay_counts_runs_and_sets_last_run_at() -> None:
    events: list[PeriodicTaskEvent] = [
        PeriodicTaskRegistered(
            name=NAME, task="reports.build", interval_seconds=60, occurred_at=at(0)
        ),
        PeriodicTaskTriggered(name=NAME, task_id="run-1", occurred_at=at(1)),
        PeriodicTaskTriggered(name=NAME, task_id="run-2", occurred_at=at(2)),
    ]
    state = fold_periodic(events)
    assert state is not None
    assert (state.total_run_count, state.last_run_at, state.last_run_task_id) == (2, at(2), "run-2")
    assert state.enabled and state.task == "reports.build"


def test_a_trigger_before_any_registration_still_counts() -> None:
    state = evolve_periodic(None, PeriodicTaskTriggered(name=NAME, task_id="r", occurred_at=at(3)))
    assert (state.total_run_count, state.task, state.interval_seconds, state.enabled) == (
        1,
        None,
        None,
        False,
    )
    state = evolve_periodic(
        state, PeriodicTaskRegistered(name=NAME, task="x", interval_seconds=5, occurred_at=at(1))
    )
    assert (state.total_run_count, state.task, state.enabled) == (1, "x", True)


def test_a_late_older_registration_does_not_undo_a_newer_unregistration() -> None:
    newer_off = PeriodicTaskUnregistered(name=NAME, reason="retired", occurred_at=at(5))
    older_on = PeriodicTaskRegistered(name=NAME, task="x", interval_seconds=5, occurred_at=at(1))
    state = evolve_all([newer_off, older_on])
    assert state is not None
    assert not state.enabled
    assert state.task == "x"  # what it used to run stays known
    assert state.config_at == at(5)


def test_evolve_refuses_another_periodic_tasks_event() -> None:
    state = evolve_periodic(None, PeriodicTaskUnregistered(name=NAME))
    with pytest.raises(ValueError, match="name: event for 'other'"):
        evolve_periodic(state, PeriodicTaskUnregistered(name="other"))
    assert fold_periodic([]) is None
