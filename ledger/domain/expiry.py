"""When a ``TaskExpired`` removes a task: the one rule, for the projector and for the fold.

An expiry is not a step of a task's state: it removes the task, if the task as it stands at
the expiry's point of the log is finished and changed status before the cut-off. So an
expiry racing a retry never deletes a live task, and a replay removes exactly what the live
views removed.
"""

from __future__ import annotations

from ledger.domain.events import TaskExpired
from ledger.domain.statuses import READY_STATES
from ledger.domain.task_state import TaskState

__all__ = ["expires"]


def expires(state: TaskState | None, event: TaskExpired) -> bool:
    """Does this expiry remove the task? Only if, where the expiry stands in the log, the
    task is finished and its status changed before the cut-off."""
    return state is not None and state.status in READY_STATES and state.date_done < event.expired_before
