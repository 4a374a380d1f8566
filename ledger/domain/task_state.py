"""One task as the views show it: the record the fold (``domain.fold``) produces.

Apart from the rules that compute it, so each reads on its own; callers import it from
``domain.fold``, the fold's public surface.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from pydantic import JsonValue

from ledger.domain.statuses import TaskStatus

__all__ = ["TaskState"]


@dataclass(frozen=True, slots=True)
class TaskState:
    """One task as the views show it (each field is a ``task_meta`` column)."""

    task_id: str
    name: str | None
    status: TaskStatus
    retries: int
    """The top-ranked event's ``attempt``: how many times the task was retried before it.
    Celery's name (``request.retries``, the result backends' column), kept for its users."""
    result: JsonValue
    exc_type: str | None
    exc_message: str | None
    exc_args: list[JsonValue] | None
    """The exception's ``args`` (what Celery's result backends store as ``exc_message``)."""
    traceback: str | None
    args: list[JsonValue] | None
    kwargs: dict[str, JsonValue] | None
    worker: str | None
    eta: datetime | None
    date_pending: datetime | None
    date_received: datetime | None
    date_started: datetime | None
    date_done: datetime
    """When the task last changed status: ``occurred_at`` of the top-ranked event. The seed's
    name (``TaskMeta.date_done``) for what is not always a finish: kept for its users."""
    runtime: float | None
    last_event_id: UUID
    last_offset: int | None
    first_seen: datetime
    """``occurred_at`` of the task's first event in log order (lowest offset; with offsets
    unknown, the lowest-ranked event): set when the task first appears, never changed."""
    root_id: str | None
    parent_id: str | None
    group_id: str | None
    callback_id: str | None
    """Where the task stands in its workflow (see ``TaskEvent``): gap fields."""
    queue: str | None
    exchange: str | None
    routing_key: str | None
    expires: datetime | None
    queue_wait: float | None
    """Seconds from publish to receipt (``date_pending`` → ``date_received``). Both dates
    are the latest of their status, so a retried task's wait spans its earlier attempts."""
    start_delay: float | None
    """Seconds from receipt to start (``date_received`` → ``date_started``): an ``eta`` or
    a busy pool."""
    total_time: float | None
    """Seconds from publish to the finish (``date_pending`` → ``date_done``), once finished."""
