"""The rank of a task's event: the order-independent order the fold decides by.

(attempt, status precedence, occurred_at, event id): later attempts, then further statuses,
then time, then the id as a tie-break. The rank belongs to the event, never to its log
position, so any permutation or duplication of a task's events ranks them the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final
from uuid import UUID

from ledger.domain.events import TaskEvent
from ledger.domain.statuses import PRECEDENCE, TaskStatus
from ledger.domain.task_state import TaskState

__all__ = ["Rank", "is_late", "precedence_of", "rank", "top_rank"]

Rank = tuple[int, int, datetime, UUID]

_PRECEDENCE: Final[dict[TaskStatus | None, int]] = {status: rank for status, rank in PRECEDENCE.items()}
_BY_CLASS: dict[type[TaskEvent], int] = {}


def precedence_of(cls: type[TaskEvent]) -> int:
    """The precedence of an event class's status, looked up once per class (the hot path)."""
    precedence = _BY_CLASS.get(cls)
    if precedence is None:
        precedence = _BY_CLASS[cls] = _PRECEDENCE[cls.status]
    return precedence


def rank(event: TaskEvent) -> Rank:
    """The event's intrinsic order: later attempts, then further statuses, then time, then
    the event id (a UUID orders exactly as its canonical string; comparing the UUID saves
    formatting it on the hot path)."""
    return (event.attempt, precedence_of(type(event)), event.occurred_at, event.event_id)


def top_rank(state: TaskState) -> Rank:
    """The rank of the event that decided ``state``'s status group."""
    return (state.retries, _PRECEDENCE[state.status], state.date_done, state.last_event_id)


def is_late(state: TaskState | None, event: TaskEvent) -> bool:
    """True when ``evolve`` would not be exact and the task must be refolded from history:
    the event ranks below the current top."""
    if state is None:
        return False
    return rank(event) < top_rank(state)
