"""Time travel: questions about the past, answered from the stored per-task history
(``ViewReader.task_events``, ``ViewReader.status_counts_as_of``).

Every answer follows the domain's rule: a task's status at an instant is the status of its
top-ranked event (``fold.rank``: attempt, precedence, occurred_at, event id) among those
that occurred by then. The database ranks with ``sql.precedence``, generated from the
domain's precedence table, so the two can never disagree.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ledger.domain.fold import TaskState, fold
from ledger.domain.statuses import UNREADY_STATES
from ledger.domain.waiting import waiting_since
from ledger.projections.rows import history_events
from ledger.projections.store import Cursor, TaskFilter, ViewReader
from ledger.timeutil import require_aware

__all__ = ["as_of", "stuck_tasks"]


def as_of(reader: ViewReader, task_id: str, at: datetime) -> TaskState | None:
    """The task as the views would have shown it at ``at`` (None: no event by then). The
    domain's ``fold`` of the events that occurred by then, so late deliveries count where
    they belong in time, whatever their log position."""
    return fold(history_events(reader.task_events(task_id, until=at)))


def stuck_tasks(store: ViewReader, older_than: timedelta, now: datetime, *, page_size: int = 500) -> list[TaskState]:
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
