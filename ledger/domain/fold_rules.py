"""The fold's merge rules as data: which fields an event decides as a whole, which it only
fills, which date each status sets (as ``celery.events.state``'s ``merge_rules``).

``domain.fold`` applies them; they are here, alone, so the rule can be read (and changed)
without the index tables and the hot loop that make it fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from ledger.domain.events import LINKAGE_FIELDS, TaskEvent
from ledger.domain.statuses import TaskStatus

__all__ = ["GAP_FIELDS", "STATUS_DATES", "STATUS_GROUP", "status_group_values"]

STATUS_GROUP: Final[tuple[str, ...]] = (
    "status",
    "retries",
    "result",
    "exc_type",
    "exc_message",
    "exc_args",
    "traceback",
    "runtime",
    "worker",
    "date_done",
    "last_event_id",
    "last_offset",
)
"""Overwritten as a whole (None included) by any event that outranks the current top, so a
success after a retry never keeps the retry's exception."""

GAP_FIELDS: Final[Mapping[str, str]] = MappingProxyType(
    {"name": "task_name", "args": "args", "kwargs": "kwargs", "eta": "eta"} | {name: name for name in LINKAGE_FIELDS}
)
"""State field → event field: taken from the highest-ranked event carrying a value, so a
late RECEIVED that knows the task's name fills it without touching the status."""

STATUS_DATES: Final[Mapping[TaskStatus, str]] = MappingProxyType(
    {
        TaskStatus.PENDING: "date_pending",
        TaskStatus.RECEIVED: "date_received",
        TaskStatus.STARTED: "date_started",
    }
)
"""Status → field holding ``occurred_at`` of the highest-ranked event of that status."""


def status_group_values(event: TaskEvent, offset: int | None) -> tuple[Any, ...]:
    """The event's values for ``STATUS_GROUP``, in that order."""
    values = event.__dict__
    emitter = event.emitter
    return (
        event.status,
        event.attempt,
        values.get("result"),
        values.get("exc_type"),
        values.get("exc_message"),
        values.get("exc_args"),
        values.get("traceback"),
        values.get("runtime"),
        emitter.worker or emitter.host,
        event.occurred_at,
        event.event_id,
        offset,
    )
