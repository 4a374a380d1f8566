"""A result-backend read from the views: "what is the state of this AsyncResult id?".

For code that used Celery's database result backend (the seed's ``TaskMeta``): the same
answer in Celery's vocabulary, including what Celery's backends cannot know (PENDING was
recorded at publish time; RECEIVED; the retries so far).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from celery import states  # type: ignore[import-untyped]
from pydantic import JsonValue

from ledger.domain.fold import TaskState
from ledger.domain.statuses import TaskStatus
from ledger.projections.queries import TaskQueries

__all__ = ["TaskResult", "celery_status", "task_state"]

_CELERY_NAMES: Final[dict[TaskStatus, str]] = {TaskStatus.DONE: states.SUCCESS}
"""The one status Celery names differently; the others (PENDING … REVOKED) are the same."""
_READY: Final[frozenset[str]] = frozenset(states.READY_STATES)
_SUCCESS: Final[str] = states.SUCCESS


def celery_status(status: TaskStatus) -> str:
    return _CELERY_NAMES.get(status, status.value)


@dataclass(frozen=True, slots=True)
class TaskResult:
    """Celery's task meta (``AsyncResult._get_task_meta()``, with ``result_extended``'s
    fields). ``result`` is the return value on SUCCESS and, on FAILURE or RETRY, the
    exception as Celery's JSON serializer stores it (``exc_type``, ``exc_message``)."""

    task_id: str
    status: str
    result: JsonValue
    traceback: str | None
    date_done: datetime | None
    name: str | None = None
    args: list[JsonValue] | None = None
    kwargs: dict[str, JsonValue] | None = None
    worker: str | None = None
    retries: int = 0

    @property
    def ready(self) -> bool:
        return self.status in _READY

    @property
    def successful(self) -> bool:
        return self.status == _SUCCESS


def task_state(task_id: str, queries: TaskQueries) -> TaskResult:
    """The state of ``task_id`` as Celery's result backend reports it. An id the ledger has
    never seen is PENDING, as in Celery; ``date_done`` is set once the task is ready."""
    meta = queries.get_task(task_id)
    state = meta.state
    if state is None:
        return TaskResult(task_id, states.PENDING, None, None, None)
    status = celery_status(state.status)
    return TaskResult(
        task_id=task_id,
        status=status,
        result=_result(state),
        traceback=state.traceback,
        date_done=state.date_done if status in _READY else None,
        name=state.name,
        args=state.args,
        kwargs=state.kwargs,
        worker=state.worker,
        retries=state.retries,
    )


def _result(state: TaskState) -> JsonValue:
    if state.status in (TaskStatus.FAILURE, TaskStatus.RETRY) and state.exc_type:
        return {"exc_type": state.exc_type, "exc_message": state.exc_message}
    return state.result if state.status is TaskStatus.DONE else None
