"""Task statuses, the seed's constants, and the precedence table that orders them.

The precedence is the one rule for out-of-order delivery: within one attempt a status may
only be replaced by one of equal or higher precedence (ties broken by time), so a late
RECEIVED can never move a finished task backwards. ``fold.rank`` builds on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

__all__ = [
    "IN_FLIGHT_STATES",
    "PRECEDENCE",
    "READY_STATES",
    "STATUS_ALIASES",
    "TASK_STATUSES",
    "TASK_STATUSES_CHOICES",
    "TASK_STATUS_DONE",
    "TASK_STATUS_FAILURE",
    "TASK_STATUS_PENDING",
    "TASK_STATUS_RECEIVED",
    "TASK_STATUS_RETRY",
    "TASK_STATUS_REVOKED",
    "TASK_STATUS_STARTED",
    "UNREADY_STATES",
    "TaskStatus",
    "every_status",
    "parse_status",
]


class TaskStatus(StrEnum):
    """A task's status; values equal names so they compare equal to the seed's strings."""

    __hash__ = str.__hash__  # as its value (values equal names): a C call, not Enum's Python one

    PENDING = "PENDING"
    RECEIVED = "RECEIVED"
    STARTED = "STARTED"
    RETRY = "RETRY"
    FAILURE = "FAILURE"
    DONE = "DONE"
    REVOKED = "REVOKED"


# The seed's constants (celery 0.3.5 ``celery.models``), plus the three added later.
TASK_STATUS_PENDING: Final = TaskStatus.PENDING
TASK_STATUS_RETRY: Final = TaskStatus.RETRY
TASK_STATUS_FAILURE: Final = TaskStatus.FAILURE
TASK_STATUS_DONE: Final = TaskStatus.DONE
TASK_STATUS_RECEIVED: Final = TaskStatus.RECEIVED
TASK_STATUS_STARTED: Final = TaskStatus.STARTED
TASK_STATUS_REVOKED: Final = TaskStatus.REVOKED

TASK_STATUSES: Final[tuple[TaskStatus, ...]] = (
    TASK_STATUS_PENDING,
    TASK_STATUS_RETRY,
    TASK_STATUS_FAILURE,
    TASK_STATUS_DONE,
    TASK_STATUS_RECEIVED,
    TASK_STATUS_STARTED,
    TASK_STATUS_REVOKED,
)
"""Every status, the seed's four first (their order in the seed's choices)."""

TASK_STATUSES_CHOICES: Final[tuple[tuple[str, str], ...]] = tuple(
    (status.value, status.value) for status in TASK_STATUSES
)
"""Django-style ``choices``: (stored value, label) pairs, as the seed defines them."""

STATUS_ALIASES: Final[Mapping[str, TaskStatus]] = MappingProxyType({"SUCCESS": TaskStatus.DONE})
"""Names other tools use for our statuses (Celery >= 0.8 says SUCCESS for DONE)."""

PRECEDENCE: Final[Mapping[TaskStatus, int]] = MappingProxyType(
    {
        TaskStatus.PENDING: 0,
        TaskStatus.RECEIVED: 1,
        TaskStatus.STARTED: 2,
        TaskStatus.RETRY: 3,
        TaskStatus.FAILURE: 3,
        TaskStatus.DONE: 3,
        TaskStatus.REVOKED: 3,
    }
)
"""Within one attempt, how far along a task is. The four outcomes share the top rank: which
of them wins is decided by time, as a revoke after success (or the reverse) really happened."""

READY_STATES: Final[frozenset[TaskStatus]] = frozenset(
    {TaskStatus.FAILURE, TaskStatus.DONE, TaskStatus.REVOKED}
)
"""Finished: nothing more will happen to the task (a retry ends an attempt, not the task)."""

UNREADY_STATES: Final[frozenset[TaskStatus]] = frozenset(TaskStatus) - READY_STATES

IN_FLIGHT_STATES: Final[frozenset[TaskStatus]] = frozenset(
    {TaskStatus.RECEIVED, TaskStatus.STARTED, TaskStatus.RETRY}
)
"""Running, as time travel shows it: a worker took the task and it has not finished (a retry
waits for its next attempt); a PENDING task was sent but never picked up."""

_BY_NAME: Final[Mapping[str, TaskStatus]] = MappingProxyType(
    {**{status.value: status for status in TaskStatus}, **STATUS_ALIASES}
)


def parse_status(text: str) -> TaskStatus:
    """Read a status from user input (CLI, HTTP): any case, surrounding spaces, or an alias."""
    status = _BY_NAME.get(text.strip().upper())
    if status is None:
        allowed = ", ".join(TASK_STATUSES)
        aliases = ", ".join(f"{alias} (= {target})" for alias, target in STATUS_ALIASES.items())
        raise ValueError(f"status: {text!r} is not one of {allowed}; aliases: {aliases}")
    return status


def every_status(counts: Mapping[TaskStatus, int]) -> dict[TaskStatus, int]:
    """Task counts in one shape wherever they are shown (CLI, HTTP, now or as of a time):
    every status in ``TaskStatus`` order, zero where no task has it."""
    return {status: counts.get(status, 0) for status in TaskStatus}
