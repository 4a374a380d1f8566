"""The outcomes of tasks whose Celery events were lost, read from Celery's result backend.

On Redis, Celery's events travel by PUBLISH: while no ingester listens they are gone, so a
task the ledger shows unfinished may have finished meanwhile. The application's result
backend (when it has one) knows how it ended. ``reconcile`` reads it for every task the
views show unfinished and appends the outcome it finds (DONE, FAILURE, REVOKED), marked
``reconciled_from``, with the id that step's event would have had
(``domain.aggregates.step_event_id``): when the real event turns up later (a second
ingester heard it), it is the same event, held once. The steps in between stay unknown,
and the timeline says so (``GapKind.RECONCILED``). A task the backend does not know, or
knows unfinished, is left as it is.

The translation (``outcome``) is pure: it takes a backend's record as a mapping. A failure
is described as the Celery-events route describes it (``celery_events.exception_fields``:
the bare class name, its arguments), so both routes give a failure the same group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from ledger.contrib.celery_events import event_from, exception_fields
from ledger.domain.aggregates import step_event_id
from ledger.domain.events import TaskEvent, TaskFailed, TaskRevoked, TaskSucceeded
from ledger.domain.statuses import TaskStatus
from ledger.domain.task_state import TaskState
from ledger.payloads import JsonPolicy
from ledger.projections.queries import TaskQueries
from ledger.projections.store import TaskFilter
from ledger.sdk import Ledger

__all__ = ["SOURCE", "UNFINISHED", "Reconciled", "ResultBackend", "outcome", "reconcile"]

SOURCE: Final = "celery result backend"
"""What a reconciled event's ``reconciled_from`` says."""
UNFINISHED: Final = (TaskStatus.PENDING, TaskStatus.RECEIVED, TaskStatus.STARTED, TaskStatus.RETRY)
"""The statuses a task may still leave: the ones reconciled."""
_OUTCOMES: Final[Mapping[str, type[TaskEvent]]] = {
    "SUCCESS": TaskSucceeded,
    "FAILURE": TaskFailed,
    "REVOKED": TaskRevoked,
}
"""Celery's ready states and the ledger events they are (``celery.states.READY_STATES``)."""
PAGE: Final = 500


class ResultBackend(Protocol):
    """What ``reconcile`` reads of a Celery result backend (``app.backend``)."""

    def get_task_meta(self, task_id: str) -> Mapping[str, Any]: ...


def outcome(task: TaskState, meta: Mapping[str, Any], payloads: JsonPolicy | None = None) -> TaskEvent | None:
    """The ledger event of the outcome ``meta`` (the result backend's record of ``task``)
    reports; None when it reports none (unknown to the backend, or not finished).
    ``InvalidEvent`` naming the field for a record that makes no valid event."""
    cls = _OUTCOMES.get(str(meta.get("status")))
    if cls is None:
        return None
    assert cls.status is not None
    known = task.retries + (1 if task.status is TaskStatus.RETRY else 0)  # a RETRY ends its attempt
    retries = meta.get("retries")  # only with the app's result_extended
    attempt = retries if isinstance(retries, int) and retries >= known else known
    fields: dict[str, Any] = {
        "task_id": task.task_id,
        "task_name": task.name or meta.get("name"),
        "attempt": attempt,
        "event_id": step_event_id(task.task_id, cls.status, attempt),
        "occurred_at": _done(meta.get("date_done")),
        "reconciled_from": SOURCE,
        **_details(cls, meta, payloads or JsonPolicy()),
    }
    return event_from(cls, fields)


def _details(cls: type[TaskEvent], meta: Mapping[str, Any], payloads: JsonPolicy) -> dict[str, Any]:
    result = meta.get("result")
    if cls is TaskSucceeded:
        return {"result": payloads.value("result", result)}
    if cls is TaskFailed:
        return {**_failure(result, payloads), "traceback": meta.get("traceback")}
    reason = _failure(result, payloads).get("exc_message") if result is not None else None
    return {"reason": reason or "revoked"}


def _failure(result: Any, payloads: JsonPolicy) -> dict[str, Any]:
    """A stored exception: the dict a JSON (or YAML …) result serializer keeps, or the
    instance a pickle one gives back."""
    if isinstance(result, Mapping) and isinstance(result.get("exc_type"), str):
        given = result.get("exc_message")
        args = list(given) if isinstance(given, list | tuple) else [] if given is None else [given]
        return exception_fields(result["exc_type"], [payloads.value(f"exc_args[{i}]", a) for i, a in enumerate(args)])
    if isinstance(result, BaseException):
        return exception_fields(type(result).__name__, [payloads.value(f"exc_args[{i}]", a)
                                                         for i, a in enumerate(result.args)])  # fmt: skip
    return {"exc_type": "Exception", "exc_message": None if result is None else str(result)}


def _done(value: Any) -> datetime | None:
    """Celery stores ``date_done`` as ISO text (a datetime with some serializers), in UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Reconciled:
    """How many unfinished tasks were looked up, and how many outcomes were appended."""

    checked: int
    recorded: int


def reconcile(backend: ResultBackend, queries: TaskQueries, ledger: Ledger, *, page: int = PAGE,
              on_progress: Callable[[int], None] | None = None) -> Reconciled:  # fmt: skip
    """Append the outcome the result backend reports for each task the views show
    unfinished, a page at a time (the views do not change under the walk: the projector
    applies the appended outcomes later). Running it again appends nothing new: the same
    steps have the same ids."""
    payloads, where, cursor = JsonPolicy(), TaskFilter(statuses=UNFINISHED), None
    checked = recorded = 0
    while True:
        found = queries.list_tasks(where, cursor=cursor, limit=page)
        events = [e for e in (outcome(t, backend.get_task_meta(t.task_id), payloads) for t in found.items) if e]
        if events:
            recorded += len(ledger.emit_many(events))
        checked += len(found.items)
        if on_progress is not None:
            on_progress(checked)
        if found.next_cursor is None:
            return Reconciled(checked, recorded)
        cursor = found.next_cursor
