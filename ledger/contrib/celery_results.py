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
    exception as a result backend with Celery's JSON serializer stores it
    (``Backend.prepare_exception``): ``{"exc_type": "ValueError", "exc_message": ["no stock"],
    "exc_module": "builtins"}``. ``exc_message`` holds the exception's args; for a failure
    recorded before the ledger kept them, ``[message]``."""

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
        return exception_meta(state.exc_type, state.exc_args, state.exc_message)
    return state.result if state.status is TaskStatus.DONE else None


def exception_meta(exc_type: str, exc_args: list[JsonValue] | None, exc_message: str | None) -> JsonValue:
    """Celery's serialized exception from the ledger's fields. The ledger's ``exc_type`` is
    module-qualified (bare for builtins): the module is what precedes the last dot (for a
    class nested in another, that is the outer class's path: Celery's own reading of such a
    type fails the same way)."""
    module, _, name = exc_type.rpartition(".")
    args: list[JsonValue] = exc_args if exc_args is not None else [] if exc_message is None else [exc_message]
    return {"exc_type": name, "exc_message": args, "exc_module": module or "builtins"}
