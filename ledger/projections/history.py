"""Time travel: questions about the past, answered from the stored per-task history.

A port of its own, apart from ``ViewStore``: the view store serves the projector's
transactions and the current views; these are read-only scans of ``task_event`` that an
operator runs ad hoc ("what was running at 02:13?"), on their own connection so a long
scan never holds the projector's. Backends: ``postgres_history.py``, ``sqlite_history.py``.

Every answer follows the domain's rule: a task's status at an instant is the status of its
top-ranked event (``fold.rank``: attempt, precedence, occurred_at, event id) among those
that occurred by then. The SQL backends rank with ``precedence_sql``, generated from the
domain's precedence table, so the two can never disagree.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from typing import Self

from ledger.domain.fold import TaskState, fold
from ledger.domain.statuses import PRECEDENCE, UNREADY_STATES, TaskStatus
from ledger.domain.waiting import waiting_since
from ledger.projections.rows import history_events
from ledger.projections.store import Cursor, HistoryRow, TaskFilter, ViewStore
from ledger.timeutil import require_aware

__all__ = ["HistoryReader", "as_of", "precedence_sql", "stuck_tasks"]


def precedence_sql(column: str = "status") -> str:
    """``CASE <column> WHEN 'PENDING' THEN 0 … END``: the domain's precedence table as SQL
    (standard SQL, valid on PostgreSQL and SQLite). ``column`` is trusted code, not input."""
    whens = " ".join(f"WHEN '{status.value}' THEN {rank}" for status, rank in PRECEDENCE.items())
    return f"CASE {column} {whens} END"


class HistoryReader(ABC):
    """Read-only queries over ``task_event``. Public methods check their arguments, then
    delegate to the backend's ``_`` method."""

    def task_events(self, task_id: str, *, until: datetime | None = None) -> list[HistoryRow]:
        """The task's history rows in log order (partition, offset); with ``until``, only
        events that occurred at or before it."""
        return self._task_events(task_id, None if until is None else require_aware(until, "until"))

    def status_counts_as_of(self, at: datetime) -> dict[TaskStatus, int]:
        """How many tasks were in each status at ``at``: per task, the status of its
        top-ranked event among those with ``occurred_at <= at``. Tasks with no event by then
        are not counted; statuses no task had are absent."""
        return self._status_counts_as_of(require_aware(at, "at"))

    @abstractmethod
    def _task_events(self, task_id: str, until: datetime | None) -> list[HistoryRow]:
        """``task_events`` with a checked ``until``: one query, ordered by partition, offset."""

    @abstractmethod
    def _status_counts_as_of(self, at: datetime) -> dict[TaskStatus, int]:
        """``status_counts_as_of`` computed in the database with ONE query (a million
        events must not cross the wire)."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection. Idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def as_of(reader: HistoryReader, task_id: str, at: datetime) -> TaskState | None:
    """The task as the views would have shown it at ``at`` (None: no event by then). The
    domain's ``fold`` of the events that occurred by then, so late deliveries count where
    they belong in time, whatever their log position."""
    return fold(history_events(reader.task_events(task_id, until=at)))


def stuck_tasks(store: ViewStore, older_than: timedelta, now: datetime, *, page_size: int = 500) -> list[TaskState]:
    """Unfinished tasks that have been waiting (``waiting_since``: since their last status
    change, or their ETA when that is later) for longer than ``older_than`` before ``now``:
    a worker died, a retry was never picked up, a message was lost. Longest-stuck first,
    then by task id. The store preselects unfinished tasks whose status changed before the
    cut-off (one that changed since cannot be stuck), paging through all of them; the
    domain's rule decides."""
    if older_than < timedelta(0):
        raise ValueError(f"older_than: must not be negative, got {older_than}")
    if page_size < 1:
        raise ValueError(f"page_size: must be at least 1, got {page_size}")
    cutoff = require_aware(now, "now") - older_than
    where = TaskFilter(statuses=tuple(sorted(UNREADY_STATES)), until=cutoff)
    found: list[tuple[datetime, str, TaskState]] = []
    after: Cursor | None = None
    while True:
        page = store.list_tasks(where, after=after, limit=page_size)
        for state in page:
            since = waiting_since(state)
            if since is not None and since < cutoff:
                found.append((since, state.task_id, state))
        if len(page) < page_size:
            break
        after = Cursor(page[-1].first_seen, page[-1].task_id)
    return [state for _, _, state in sorted(found, key=lambda entry: entry[:2])]
