"""Events → the current state of one periodic task: the rule of ``periodic_task_meta``.

Order-independent like the task fold, but simpler: there are no statuses. The newest
registration (by occurred_at, then event id) decides what runs and how often; the newest
registration-or-unregistration decides whether it is enabled; every trigger counts once
(the seed's ``PeriodicTaskMeta.delay()``: ``total_run_count += 1``, ``last_run_at``).
A trigger seen before any registration still counts; task and interval stay unknown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

from ledger.domain.events import (
    PeriodicTaskEvent,
    PeriodicTaskRegistered,
    PeriodicTaskTriggered,
    PeriodicTaskUnregistered,
)

__all__ = ["PeriodicState", "evolve_periodic", "fold_periodic", "is_due", "next_run_at"]


@dataclass(frozen=True, slots=True)
class PeriodicState:
    """One periodic task as the views show it (each field a ``periodic_task_meta`` column).

    Besides the seed's columns it keeps the rank (time, event id) of each deciding event,
    so a late event can be compared with the one that decided and the fold stays
    order-independent: ``config_*`` for enabled, ``registered_*`` for task and interval,
    ``last_run_event_id`` for ``last_run_task_id``.
    """

    name: str
    task: str | None
    interval_seconds: float | None
    enabled: bool
    last_run_at: datetime | None
    total_run_count: int
    last_run_task_id: str | None
    config_at: datetime | None
    config_event_id: UUID | None
    last_event_id: UUID
    registered_at: datetime | None = None
    registered_event_id: UUID | None = None
    last_run_event_id: UUID | None = None


def next_run_at(state: PeriodicState) -> datetime | None:
    """When the next run is due: one interval after the last run or, for an entry that has
    not run yet, after its registration (a scheduler runs a new entry one interval after it
    starts: beat's daily ``celery.backend_cleanup`` is not due the moment beat starts).
    None when the interval is unknown."""
    since = state.last_run_at or state.registered_at
    if not state.interval_seconds or since is None:
        return None
    return since + timedelta(seconds=state.interval_seconds)


def is_due(state: PeriodicState, now: datetime) -> bool:
    """Enabled, with a known interval, and its next run is not in the future."""
    upcoming = next_run_at(state)
    return state.enabled and upcoming is not None and upcoming <= now


def evolve_periodic(state: PeriodicState | None, event: PeriodicTaskEvent) -> PeriodicState:
    """Apply one event. Exact in any order, provided the caller drops duplicate event ids
    (a duplicated trigger would count twice)."""
    if state is None:
        state = PeriodicState(
            name=event.name,
            task=None,
            interval_seconds=None,
            enabled=False,
            last_run_at=None,
            total_run_count=0,
            last_run_task_id=None,
            config_at=None,
            config_event_id=None,
            last_event_id=event.event_id,
        )
    elif state.name != event.name:
        raise ValueError(f"name: event for {event.name!r} applied to {state.name!r}")
    state = _apply(state, event)
    return replace(state, last_event_id=_last_event_id(state))


def fold_periodic(events: Iterable[PeriodicTaskEvent]) -> PeriodicState | None:
    """The state after ``events`` in any order, duplicates (same event id) counted once."""
    unique = {event.event_id: event for event in events}
    state: PeriodicState | None = None
    for event in unique.values():
        state = evolve_periodic(state, event)
    return state


def _apply(state: PeriodicState, event: PeriodicTaskEvent) -> PeriodicState:
    if isinstance(event, PeriodicTaskTriggered):
        return _trigger(state, event)
    if not _newer(event, state.config_at, state.config_event_id):
        if isinstance(event, PeriodicTaskRegistered):  # may still be the newest registration
            return _register(state, event)
        return state
    state = replace(
        state,
        enabled=isinstance(event, PeriodicTaskRegistered),
        config_at=event.occurred_at,
        config_event_id=event.event_id,
    )
    if isinstance(event, PeriodicTaskRegistered):
        return _register(state, event)
    assert isinstance(event, PeriodicTaskUnregistered)
    return state


def _register(state: PeriodicState, event: PeriodicTaskRegistered) -> PeriodicState:
    if not _newer(event, state.registered_at, state.registered_event_id):
        return state
    return replace(
        state,
        task=event.task,
        interval_seconds=event.interval_seconds,
        registered_at=event.occurred_at,
        registered_event_id=event.event_id,
    )


def _trigger(state: PeriodicState, event: PeriodicTaskTriggered) -> PeriodicState:
    newest = _newer(event, state.last_run_at, state.last_run_event_id)
    return replace(
        state,
        total_run_count=state.total_run_count + 1,
        last_run_at=event.occurred_at if newest else state.last_run_at,
        last_run_task_id=event.task_id if newest else state.last_run_task_id,
        last_run_event_id=event.event_id if newest else state.last_run_event_id,
    )


def _last_event_id(state: PeriodicState) -> UUID:
    """The newest event of all: the newer of the newest config change and the newest run
    (every event is one or the other, so no extra rank needs keeping)."""
    ranks = [
        (at, event_id)
        for at, event_id in (
            (state.config_at, state.config_event_id),
            (state.last_run_at, state.last_run_event_id),
        )
        if at is not None and event_id is not None
    ]
    return max(ranks)[1] if ranks else state.last_event_id


def _newer(event: PeriodicTaskEvent, at: datetime | None, event_id: UUID | None) -> bool:
    """Does ``event`` rank above the one recorded as (at, event_id)? None: nothing yet."""
    if at is None or event_id is None:
        return True
    return (event.occurred_at, event.event_id) > (at, event_id)
