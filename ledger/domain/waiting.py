"""Since when an unfinished task counts as waiting: the one rule behind "stuck" tasks.

A task waits for something to happen to it (a worker to take it, to finish it, to pick up
its retry) from its last status change, except that a task scheduled for later (an ETA, a
retry's countdown) waits only from its ETA: until then nothing is supposed to happen, and
a task held for its ETA is not stuck. A finished task does not wait.
"""

from __future__ import annotations

from datetime import datetime

from ledger.domain.fold import TaskState
from ledger.domain.statuses import READY_STATES

__all__ = ["waiting_since"]


def waiting_since(state: TaskState) -> datetime | None:
    """The later of the last status change (``date_done``) and the ETA; None when the task
    is finished."""
    if state.status in READY_STATES:
        return None
    if state.eta is not None and state.eta > state.date_done:
        return state.eta
    return state.date_done
