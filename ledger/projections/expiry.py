"""``delete_expired``: remove finished tasks from the views without touching the log.

The removal is itself an event (``TaskExpired``) appended to the log and applied by the
projector, so a replay of the log gives the same views as the live ones (invariant 1).
An expiry only removes a task that is still finished and older than the cut-off when the
projector applies it, so one racing a retry never deletes a live task.

It appends through anything with the SDK's ``emit_many`` (``Emits``: a ``ledger.sdk.Ledger``
in practice), so projections need not import the SDK, a layer above them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from ledger.domain.events import TaskExpired
from ledger.projections.store import ViewReader


class Emits(Protocol):
    """What ``delete_expired`` appends through (``ledger.sdk.Ledger`` is one)."""

    def emit_many(self, events: Iterable[TaskExpired], /) -> object:
        """Append ``events`` in order, in one call."""


def delete_expired(
    store: ViewReader,
    ledger: Emits,
    older_than: timedelta,
    *,
    now: datetime | None = None,
    limit: int = 100_000,
) -> int:
    """Emit an expiry for every finished task whose ``date_done`` is more than
    ``older_than`` ago (at most ``limit``); returns how many were emitted. The rows
    disappear once the projector has applied them."""
    if older_than < timedelta(0):
        raise ValueError(f"older_than: must not be negative, got {older_than}")
    before = (now or datetime.now(UTC)) - older_than
    task_ids = store.finished_before(before, limit)
    for start in range(0, len(task_ids), 1000):
        chunk = task_ids[start : start + 1000]
        ledger.emit_many(TaskExpired(task_id=task_id, expired_before=before) for task_id in chunk)
    return len(task_ids)
