"""How a batch of decoded events becomes row changes (``Changes``).

The domain's fold decides every row. In-order events (the normal case) are folded
incrementally onto the stored row; an event that ranks below the stored row's top (late,
or a duplicate of an older event) makes the task refold from its stored history plus the
batch, so late arrivals give exactly the state the full fold gives. Duplicate appends
(same event id) are dropped against the stored history, so nothing is applied twice.
Failure-group decisions and worker events keep no history: the writer's upserts only move
forward, so a duplicate or a late one changes nothing it should not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from ledger.domain.events import (
    AnyEvent,
    FailureGroupEvent,
    FailureGroupReopened,
    FailureGroupResolved,
    PeriodicTaskEvent,
    PeriodicTaskTriggered,
    TaskEvent,
    TaskExpired,
    TaskFailed,
    WorkerEvent,
)
from ledger.domain.failures import fingerprint
from ledger.domain.fold import TaskState, evolve, expires, fold, is_late
from ledger.domain.periodic import PeriodicState, evolve_periodic
from ledger.domain.workers import WorkerState, merge, sighting
from ledger.projections.store import Changes, GroupDecision, HistoryRow
from ledger.wire import EVENT_ADAPTER, dump_event


@dataclass(frozen=True, slots=True)
class Decoded:
    """A valid event with the coordinates it was read from (and its JSON as read, if kept:
    the history's payload)."""

    event: AnyEvent
    partition: int
    offset: int
    payload: bytes | None = None


def history_row(item: Decoded) -> HistoryRow:
    event = item.event
    assert not isinstance(event, FailureGroupEvent | WorkerEvent), "decisions and worker events have no history row"
    run_task_id = None
    if isinstance(event, TaskEvent):
        key, attempt = event.task_id, event.attempt
        status = event.status.value if event.status is not None else None
    else:
        key, attempt, status = event.name, 0, None
        run_task_id = event.task_id if isinstance(event, PeriodicTaskTriggered) else None
    return HistoryRow(
        event_id=event.event_id,
        key=key,
        type=event.type,
        status=status,
        attempt=attempt,
        occurred_at=event.occurred_at,
        partition=item.partition,
        offset=item.offset,
        payload=dump_event(event) if item.payload is None else item.payload,
        run_task_id=run_task_id,
        fingerprint=fingerprint(event.task_name, event.exc_type, event.exc_message)
        if isinstance(event, TaskFailed) else None,
    )


def decision(event: FailureGroupEvent) -> GroupDecision:
    if isinstance(event, FailureGroupResolved):
        return GroupDecision(event.fingerprint, "resolved", event.occurred_at, event.resolved_by, event.event_id)
    assert isinstance(event, FailureGroupReopened)
    return GroupDecision(event.fingerprint, "reopened", event.occurred_at, event.reopened_by, event.event_id)


def worker_rows(events: Sequence[WorkerEvent]) -> list[WorkerState]:
    """One row per worker: its events of the batch merged (``domain.workers.merge``), so the
    writer upserts each worker once, however many heartbeats the batch holds."""
    rows: dict[str, WorkerState] = {}
    for event in events:
        seen = sighting(event)
        held = rows.get(event.hostname)
        rows[event.hostname] = seen if held is None else merge(held, seen)
    return list(rows.values())


def history_events(rows: Sequence[HistoryRow]) -> list[tuple[TaskEvent, int | None]]:
    """Stored history back into (event, offset) pairs for a refold."""
    events: list[tuple[TaskEvent, int | None]] = []
    for row in rows:
        event = EVENT_ADAPTER.validate_json(row.payload)
        if isinstance(event, TaskEvent):
            events.append((event, row.offset))
    return events


class PlannerReads(Protocol):
    """What the planner reads: a view store (``ViewWriter``), or what a rebuild's bulk load
    holds in memory of the partition it folds (``consumers.bulk_load``)."""

    def load_tasks(self, task_ids: Iterable[str]) -> dict[str, TaskState]: ...
    def load_periodic(self, names: Iterable[str]) -> dict[str, PeriodicState]: ...
    def known_event_ids(self, event_ids: Iterable[UUID]) -> set[UUID]: ...
    def task_history(self, task_ids: Iterable[str]) -> list[HistoryRow]: ...


class BatchPlanner:
    """Turns decoded events into ``Changes`` using the store only to read current rows."""

    def __init__(self, store: PlannerReads) -> None:
        self._store = store

    def plan(
        self,
        items: Sequence[Decoded],
        *,
        projection: str,
        topic: str,
        expected_offsets: dict[int, int],
        offsets: dict[int, int],
    ) -> Changes:
        changes = Changes(projection, topic, dict(expected_offsets), dict(offsets))
        workers = [i.event for i in items if isinstance(i.event, WorkerEvent)]
        fresh = self._drop_duplicates([i for i in items if not isinstance(i.event, WorkerEvent)])
        self._plan_tasks([i for i in fresh if isinstance(i.event, TaskEvent)], changes)
        self._plan_periodic([i for i in fresh if isinstance(i.event, PeriodicTaskEvent)], changes)
        changes.decisions = [decision(i.event) for i in fresh if isinstance(i.event, FailureGroupEvent)]
        changes.workers = worker_rows(workers)  # no history: a batch of heartbeats reads nothing
        return changes

    def _drop_duplicates(self, items: Sequence[Decoded]) -> list[Decoded]:
        seen = self._store.known_event_ids({i.event.event_id for i in items}) if items else set()
        fresh = []
        for item in items:
            if item.event.event_id not in seen:
                seen.add(item.event.event_id)
                fresh.append(item)
        return fresh

    def _plan_tasks(self, items: list[Decoded], changes: Changes) -> None:
        if not items:
            return
        task_ids = {i.event.task_id for i in items if isinstance(i.event, TaskEvent)}
        states: dict[str, TaskState | None] = dict(self._store.load_tasks(task_ids))
        refold: set[str] = set()
        deleted: set[str] = set()
        kept: list[Decoded] = []
        for item in items:
            event = item.event
            assert isinstance(event, TaskEvent)
            state = states.get(event.task_id)
            if isinstance(event, TaskExpired):
                if expires(state, event):
                    states[event.task_id] = None
                    deleted.add(event.task_id)
                    refold.discard(event.task_id)
                    kept = [k for k in kept if _task_id(k) != event.task_id]
                continue
            kept.append(item)
            if event.task_id in refold:
                continue
            if state is not None and is_late(state, event):
                refold.add(event.task_id)
            else:
                states[event.task_id] = evolve(state, event, item.offset)
        self._refold(refold, deleted, kept, states)
        changes.deleted_tasks = sorted(deleted)
        changes.task_history = [history_row(k) for k in kept]
        changes.tasks = [s for s in states.values() if s is not None]

    def _refold(
        self,
        task_ids: set[str],
        deleted: set[str],
        kept: list[Decoded],
        states: dict[str, TaskState | None],
    ) -> None:
        if not task_ids:
            return
        stored = [r for r in self._store.task_history(task_ids - deleted)]
        by_task: dict[str, list[tuple[TaskEvent, int | None]]] = {t: [] for t in task_ids}
        for event, offset in history_events(stored):
            by_task[event.task_id].append((event, offset))
        for item in kept:
            if _task_id(item) in task_ids:
                assert isinstance(item.event, TaskEvent)
                by_task[item.event.task_id].append((item.event, item.offset))
        for task_id, events in by_task.items():
            states[task_id] = fold(events)

    def _plan_periodic(self, items: list[Decoded], changes: Changes) -> None:
        if not items:
            return
        names = {i.event.name for i in items if isinstance(i.event, PeriodicTaskEvent)}
        states: dict[str, PeriodicState | None] = dict(self._store.load_periodic(names))
        for item in items:
            event = item.event
            assert isinstance(event, PeriodicTaskEvent)
            states[event.name] = evolve_periodic(states.get(event.name), event)
        changes.periodic = [s for s in states.values() if s is not None]
        changes.periodic_history = [history_row(i) for i in items]


def _task_id(item: Decoded) -> str | None:
    return item.event.task_id if isinstance(item.event, TaskEvent) else None

