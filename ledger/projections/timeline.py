"""One task's history as an operator reads it: every event in log order, who sent it, what
it did to the status, and what looks missing.

Pure (no I/O): it takes the stored history rows (``ViewReader.task_events`` or
``ViewWriter.task_history``) and folds them in LOG order with the domain's ``evolve``, so
each entry shows the status the live projector saw before and after that event. An event
that ranks below the state it arrived at cannot move the status (``status_after ==
status_before``). ``late`` is narrower: the event arrived after a later state of its own
attempt (a RECEIVED after that attempt's DONE). An older attempt's event arriving after a
newer attempt began is not late: Celery publishes a retry's next attempt (PENDING,
attempt n + 1) before the worker reports the RETRY of attempt n, every time.

Gaps are findings, not errors: a log delivers what workers sent, and a worker killed
mid-task or an emitter that never sends PENDING leaves holes an operator wants pointed at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final
from uuid import UUID

from ledger.domain.events import Emitter, TaskEvent
from ledger.domain.fold import Rank, TaskState, evolve, rank
from ledger.domain.statuses import PRECEDENCE, READY_STATES, TaskStatus
from ledger.eventlog.base import Position
from ledger.projections.store import HistoryRow
from ledger.wire import EVENT_ADAPTER

__all__ = ["TERMINAL_STATUSES", "Gap", "GapKind", "Timeline", "TimelineEntry", "build_timeline"]

TERMINAL_STATUSES: Final = frozenset(s for s, p in PRECEDENCE.items() if p == max(PRECEDENCE.values()))
"""Statuses that end an attempt (RETRY, FAILURE, DONE, REVOKED): the precedence table's top
rank, so a new outcome added there is terminal here too."""


class GapKind(StrEnum):
    UNFINISHED_ATTEMPT = "unfinished_attempt"
    """An attempt older than the latest one has no terminal event (its outcome was lost)."""
    MISSING_ATTEMPT = "missing_attempt"
    """An attempt number between 0 and the latest one has no event at all."""
    STARTED_WITHOUT_RECEIVED = "started_without_received"
    """A STARTED with no RECEIVED in the same attempt."""
    NO_PENDING = "no_pending"
    """The task ran (RECEIVED/STARTED) but no PENDING was ever recorded for it."""
    RECONCILED = "reconciled"
    """An outcome was not seen happen but read afterwards (``TaskEvent.reconciled_from``):
    the steps before it are unknown."""


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One event of the task and its effect on the status, as the projector applied it."""

    position: Position
    event_id: UUID
    occurred_at: datetime
    type: str
    attempt: int
    emitter: Emitter
    """Host, pid and worker name of the process that wrote the event."""
    status: TaskStatus | None
    """The status this event reports (None for an expiry)."""
    status_before: TaskStatus | None
    status_after: TaskStatus
    late: bool
    """It arrived after a later state of its own attempt (so it did not change the status)."""
    reconciled_from: str | None = None
    """Where the event was read from when it was not seen happen (``TaskEvent.reconciled_from``)."""


@dataclass(frozen=True, slots=True)
class Gap:
    """Something missing from the history; ``message`` is one line for a human."""

    kind: GapKind
    attempt: int
    message: str


@dataclass(frozen=True, slots=True)
class Timeline:
    task_id: str
    entries: list[TimelineEntry]
    gaps: list[Gap]
    in_progress: bool
    """Not finished: the latest status is not a ready state (the latest attempt has no
    terminal event yet, or it ended in RETRY and the next attempt has not started)."""


def build_timeline(rows: Sequence[HistoryRow]) -> Timeline:
    """The timeline of the one task whose history ``rows`` are (any order: they are sorted
    by log position). Raises ``ValueError`` for no rows, or rows of several tasks."""
    if not rows:
        raise ValueError("rows: a timeline needs at least one event of the task")
    ordered = sorted(rows, key=lambda row: (row.partition, row.offset))
    task_id = ordered[0].key
    entries: list[TimelineEntry] = []
    state: TaskState | None = None
    tops: dict[int, Rank] = {}  # per attempt, the highest rank arrived so far
    for row in ordered:
        event = _task_event(row, task_id)
        ranked, top = rank(event), tops.get(event.attempt)
        late = top is not None and ranked < top
        tops[event.attempt] = ranked if top is None else max(top, ranked)
        before = state.status if state is not None else None
        state = evolve(state, event, row.offset)
        entries.append(_entry(row, event, before, state.status, late))
    assert state is not None
    return Timeline(task_id, entries, find_gaps(entries), state.status not in READY_STATES)


def _task_event(row: HistoryRow, task_id: str) -> TaskEvent:
    event = EVENT_ADAPTER.validate_json(row.payload)
    if not isinstance(event, TaskEvent):
        raise ValueError(f"rows: event {row.event_id} is a {event.type!r} event, not a task event")
    if event.task_id != task_id:
        raise ValueError(f"rows: events of {task_id!r} and {event.task_id!r} mixed")
    return event


def _entry(
    row: HistoryRow, event: TaskEvent, before: TaskStatus | None, after: TaskStatus, late: bool
) -> TimelineEntry:
    return TimelineEntry(
        position=Position(row.partition, row.offset),
        event_id=event.event_id,
        occurred_at=event.occurred_at,
        type=event.type,
        attempt=event.attempt,
        emitter=event.emitter,
        status=event.status,
        status_before=before,
        status_after=after,
        late=late,
        reconciled_from=event.reconciled_from,
    )


def find_gaps(entries: Sequence[TimelineEntry]) -> list[Gap]:
    """Gaps by attempt, in attempt order. The latest attempt without a terminal event is
    the task still running (``Timeline.in_progress``), not a gap. ``NO_PENDING`` is reported
    once per task, and only when the task has no PENDING at all: a PENDING of any attempt
    proves the task was sent, and emitters that skip PENDING would otherwise flag every
    event."""
    by_attempt: dict[int, set[TaskStatus]] = {}
    for entry in entries:
        if entry.status is not None:
            by_attempt.setdefault(entry.attempt, set()).add(entry.status)
    if not by_attempt:
        return []
    gaps: list[Gap] = []
    ran = {TaskStatus.RECEIVED, TaskStatus.STARTED}
    if not any(TaskStatus.PENDING in seen for seen in by_attempt.values()):
        first_run = min((a for a, seen in by_attempt.items() if seen & ran), default=None)
        if first_run is not None:
            gaps.append(Gap(GapKind.NO_PENDING, first_run, "no PENDING event: the task ran but was never seen sent"))
    latest = max(by_attempt)
    for attempt in range(latest + 1):
        seen = by_attempt.get(attempt)
        if seen is None:
            gaps.append(Gap(GapKind.MISSING_ATTEMPT, attempt, f"attempt {attempt} has no events"))
            continue
        if TaskStatus.STARTED in seen and TaskStatus.RECEIVED not in seen:
            message = f"attempt {attempt} has a STARTED event but no RECEIVED"
            gaps.append(Gap(GapKind.STARTED_WITHOUT_RECEIVED, attempt, message))
        if attempt < latest and not seen & TERMINAL_STATUSES:
            gaps.append(Gap(GapKind.UNFINISHED_ATTEMPT, attempt, f"attempt {attempt} has no terminal event"))
    for entry in entries:
        if entry.reconciled_from is not None and entry.status is not None:
            gaps.append(Gap(GapKind.RECONCILED, entry.attempt, f"attempt {entry.attempt}: {entry.status.value} was "
                            f"read from the {entry.reconciled_from}, not seen happen: the steps before it are unknown"))
    return gaps
