"""The query API on the views: parity with the seed's managers (Celery 0.3 ``TaskMeta`` /
``PeriodicTaskMeta``), plus what operators ask for (keyset pages, counts, missed runs).

Reads only; ``delete_expired`` does not delete anything itself: it emits expiry events to
the log, and the projector removes the rows, so a replay gives the same views.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Final

from pydantic import JsonValue

from ledger.domain.fold import TaskState
from ledger.domain.periodic import PeriodicState, is_due, next_run_at
from ledger.domain.statuses import TaskStatus, every_status
from ledger.projections.store import DEFAULT_ORDER, Cursor, RunOutcome, TaskFilter, TaskOrder, ViewReader

ALL_TASKS = TaskFilter()


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class TaskMeta:
    """The seed's ``TaskMeta``: task_id, status, result, date_done; ``state`` holds the full
    row, or None for an id the ledger has never seen (which reads as PENDING, as in Celery)."""

    task_id: str
    status: TaskStatus
    result: JsonValue
    date_done: datetime | None
    state: TaskState | None


@dataclass(frozen=True, slots=True)
class Page:
    items: list[TaskState]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class PeriodicTaskMeta:
    """The seed's ``PeriodicTaskMeta`` plus the run outcomes nobody else keeps."""

    state: PeriodicState
    last_run_status: TaskStatus | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    missed_runs: int
    duplicate_firings: int
    """Runs dispatched inside a slot another run already opened (two beats, say)."""
    next_run_at: datetime | None
    due: bool


CURSOR_VERSION: Final = "3"
"""Bumped whenever what a cursor holds changes. Version 3: order|key|task_id, the key being
the order's instant (``TaskOrder.key_of``). Version 2 (first_seen|task_id) is a cursor of
the default order and still read; version 1 (no version field; ``date_done|task_id``, in
another order) is refused."""
_DEFAULT_ORDER_VERSION: Final = "2"


def encode_cursor(state: TaskState, order: TaskOrder = DEFAULT_ORDER) -> str:
    raw = f"{CURSOR_VERSION}|{order.value}|{order.key_of(state).astimezone(UTC).isoformat()}|{state.task_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str, order: TaskOrder | None = None) -> Cursor:
    """Raises ValueError naming the parameter when the cursor is not one this version of
    the ledger issued (a cursor from before an upgrade says so: start the walk again), or,
    given ``order``, when it was issued for another order."""
    not_ours = ValueError(f"cursor: not a cursor this ledger issued ({cursor!r})")
    try:
        version, _, rest = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
    except (ValueError, UnicodeDecodeError) as exc:
        raise not_ours from exc
    if version == CURSOR_VERSION:
        named, _, rest = rest.partition("|")
        try:
            issued = TaskOrder(named)
        except ValueError:
            raise not_ours from None
    elif version == _DEFAULT_ORDER_VERSION:
        issued = DEFAULT_ORDER
    elif _instant(version) is not None:
        raise ValueError(
            "cursor: issued by an older version of the ledger, whose pages were in another order; "
            "start the walk again without a cursor"
        )
    else:
        raise not_ours
    when, separator, task_id = rest.partition("|")
    at = _instant(when)
    if not separator or at is None or at.tzinfo is None:
        raise not_ours
    if order is not None and issued is not order:
        raise ValueError(f"cursor: issued for sort={issued.value}, not sort={order.value}; start the walk again")
    return Cursor(at, task_id, issued)


def _instant(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def missed_runs(runs: list[RunOutcome], interval: float | None, grace: float, now: datetime) -> int:
    """Runs that were due but not triggered within ``grace`` seconds: each gap between
    consecutive triggers (and since the last one) longer than an interval plus the grace
    counts the whole intervals it skipped."""
    if not interval or not runs:
        return 0
    times = [r.triggered_at for r in runs] + [now]
    missed = 0
    for before, after in pairwise(times):
        gap = (after - before).total_seconds() - grace
        missed += max(0, math.floor(gap / interval)) if gap > 0 else 0
    return missed


SLOT_FRACTION = 0.5
"""How much of an interval a slot spans, from the run that opened it."""


def duplicate_firings(runs: Iterable[RunOutcome], interval: float | None) -> int:
    """Runs triggered less than half an interval after the run that opened the current
    slot. A scheduler's regular runs come one interval apart, give or take its tick, so
    what lands in between is a second scheduler (two beat processes, an overlapping
    deploy) or a manual re-dispatch. Half an interval, not a whole one, so the jitter of
    a single scheduler is never flagged. Unknown interval (never registered): 0."""
    if not interval or interval <= 0:
        return 0
    window = interval * SLOT_FRACTION
    duplicates = 0
    opened = None
    for when in sorted(run.triggered_at for run in runs):
        if opened is not None and (when - opened).total_seconds() < window:
            duplicates += 1
        else:
            opened = when
    return duplicates


class TaskQueries:
    """Python reads of the views."""

    def __init__(self, store: ViewReader, *, now: Callable[[], datetime] = utcnow) -> None:
        self.store, self.now = store, now

    def task_state(self, task_id: str) -> TaskState | None:
        """The task's full current row; None for an id the ledger has never seen."""
        return self.store.task_state(task_id)

    def get_task(self, task_id: str) -> TaskMeta:
        """The seed's ``TaskMeta`` read: an unknown id reads as PENDING, never as None."""
        state = self.store.task_state(task_id)
        if state is None:
            return TaskMeta(task_id, TaskStatus.PENDING, None, None, None)
        return TaskMeta(task_id, state.status, state.result, state.date_done, state)

    def is_done(self, task_id: str) -> bool:
        """True once the task executed successfully (the seed's DONE)."""
        return self.get_task(task_id).status is TaskStatus.DONE

    def list_tasks(self, where: TaskFilter = ALL_TASKS, *, cursor: str | None = None, limit: int = 50,
                   order: TaskOrder = DEFAULT_ORDER) -> Page:  # fmt: skip
        """One page of the tasks matching ``where`` in ``order`` (default: newest first by first
        appearance, ``first_seen``, the time of the task's first event in the log); pass
        ``next_cursor`` back as ``cursor``, with the same order, for the next page. A walk over
        all pages returns every task that existed when it began exactly once, whatever changes
        meanwhile (with a filter: each such task that still matches when the walk reaches it;
        an expired task is gone); tasks created during the walk may or may not appear. In the
        ``changed`` orders a task that changes during the walk moves (``TaskOrder``)."""
        if not 1 <= limit <= 1000:
            raise ValueError(f"limit: must be between 1 and 1000, got {limit}")
        after = decode_cursor(cursor, order) if cursor else None
        rows = self.store.list_tasks(where, after=after, limit=limit + 1, order=order)
        items = rows[:limit]
        return Page(items, encode_cursor(items[-1], order) if len(rows) > limit else None)

    def status_counts(self) -> dict[TaskStatus, int]:
        return every_status(self.store.status_counts())

    def periodic_tasks(self, *, grace_seconds: float = 60.0) -> list[PeriodicTaskMeta]:
        now = self.now()
        runs = self.store.periodic_runs()
        return [
            self._periodic(state, runs.get(state.name, []), grace_seconds, now) for state in self.store.periodic_tasks()
        ]

    def get_waiting_tasks(self) -> list[PeriodicTaskMeta]:
        """Enabled periodic tasks that are due now (``domain.periodic.is_due``), as Celery
        0.3's periodic manager returned them."""
        return [p for p in self.periodic_tasks() if p.due]

    @staticmethod
    def _periodic(state: PeriodicState, runs: list[RunOutcome], grace: float, now: datetime) -> PeriodicTaskMeta:
        last = runs[-1] if runs else None
        done = [r.date_done for r in runs if r.status is TaskStatus.DONE and r.date_done]
        failed = [r.date_done for r in runs if r.status is TaskStatus.FAILURE and r.date_done]
        return PeriodicTaskMeta(
            state=state,
            last_run_status=last.status if last else None,
            last_success_at=max(done, default=None),
            last_failure_at=max(failed, default=None),
            missed_runs=missed_runs(runs, state.interval_seconds, grace, now) if state.enabled else 0,
            duplicate_firings=duplicate_firings(runs, state.interval_seconds),
            next_run_at=next_run_at(state),
            due=is_due(state, now),
        )
