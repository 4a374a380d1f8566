"""Celery's own task and worker events (``task-sent``, ``task-received`` …,
``worker-heartbeat`` …, the dicts ``celery.events`` delivers to ``celery events``, Flower
and other monitors) → the ledger's events.

For importing what a Celery fleet already publishes (``worker_send_task_events``,
``task_send_sent_event``) with no change to its code. The rules are the ledger's:

- **Attempt**, the way a worker derives it: ``task-sent`` and ``task-received`` carry
  ``retries``; the events after them do not, so each takes the oldest attempt of its task
  not ended yet (remembered per translator, bounded), and a ``task-retried`` ends it. Not
  the latest attempt announced: a retrying task publishes its next attempt (``task-sent``,
  retries n + 1) from the pool child before the worker sends that attempt's
  ``task-retried``, so the next attempt is announced while this one is still finishing.
  An announcement of attempt n + 1 does prove attempt n at least finishing, so nothing
  older stays open (an attempt whose end was never heard does not hold the rest back).
- **Event id** from the step (``domain.aggregates.step_event_id``: task id, status,
  attempt), so a transition recorded both by ``install(app)`` and from Celery's events,
  or delivered twice, is one event.
- **Who and when**: the original worker (``hostname``, ``pid``) and ``timestamp``.
- **Workers**: ``worker-online``, ``worker-heartbeat`` and ``worker-offline`` become the
  ``worker.*`` events (interval, software, load average, processed and active counts),
  each with an id from (hostname, type, timestamp) (``domain.workers.worker_event_id``),
  so a heartbeat delivered twice is one event.
- **Values**: Celery's events carry ``repr()`` text of args, kwargs and results (its
  ``saferepr``). Literal ones (numbers, strings, lists, dicts, tuples …) are parsed back
  (``celery_reprs``: each distinct text once); any other is kept as its text (args: a
  one-element list holding the text; kwargs: ``{"repr": text}``). An exception's text
  (``ValueError('no stock')``) gives its type and args the same way.

Pure translation (no Celery import): it takes mappings and returns ledger events;
``import_celery_events`` (and ``ledger import celery-events FILE``) appends a file of them.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError

from ledger.contrib.celery_linkage import linkage
from ledger.contrib.celery_reprs import ReprReader
from ledger.domain.aggregates import step_event_id
from ledger.domain.events import (
    AnyTaskEvent,
    AnyWorkerEvent,
    Emitter,
    TaskEvent,
    TaskFailed,
    TaskPending,
    TaskReceived,
    TaskRetried,
    TaskRevoked,
    TaskStarted,
    TaskSucceeded,
    WorkerEvent,
    WorkerHeartbeat,
    WorkerOffline,
    WorkerOnline,
)
from ledger.domain.workers import worker_event_id
from ledger.payloads import InvalidEvent, JsonPolicy
from ledger.sdk import Ledger
from ledger.wire import describe_validation_error

__all__ = [
    "TASK_EVENT_TYPES",
    "WORKER_EVENT_TYPES",
    "CeleryEventTranslator",
    "Imported",
    "event_from",
    "exception_fields",
    "import_celery_events",
]

TASK_EVENT_TYPES: Final[Mapping[str, type[TaskEvent]]] = {
    "task-sent": TaskPending,
    "task-received": TaskReceived,
    "task-started": TaskStarted,
    "task-succeeded": TaskSucceeded,
    "task-failed": TaskFailed,
    "task-retried": TaskRetried,
    "task-revoked": TaskRevoked,
    "task-rejected": TaskRevoked,
}
"""Celery's task event types and the ledger event each becomes."""
WORKER_EVENT_TYPES: Final[Mapping[str, type[WorkerEvent]]] = {
    "worker-online": WorkerOnline,
    "worker-heartbeat": WorkerHeartbeat,
    "worker-offline": WorkerOffline,
}
"""Celery's worker event types and the ledger event each becomes."""
_WORKER_DETAILS: Final = ("freq", "sw_ident", "sw_ver", "sw_sys", "loadavg", "processed", "active")
_REMEMBERED: Final = 100_000
_EXCEPTION: Final = re.compile(r"^\s*([A-Za-z_][\w.]*)\((.*)\)\s*$", re.DOTALL)


class CeleryEventTranslator:
    """Stateful only in the attempts it remembers; one per stream of Celery events."""

    def __init__(self, remembered: int = _REMEMBERED) -> None:
        self._open: OrderedDict[str, int] = OrderedDict()  # task id -> its oldest attempt not ended
        self._remembered = remembered
        self._reprs = ReprReader(JsonPolicy())

    def translate(self, event: Mapping[str, Any]) -> AnyTaskEvent | AnyWorkerEvent | None:
        """The ledger event of one Celery event; None for what the ledger does not record
        (a rejected message that goes back to its queue, an unknown type).
        ``InvalidEvent`` naming the field for a task or worker event that makes no valid event."""
        kind = event.get("type")
        if isinstance(kind, str) and kind in WORKER_EVENT_TYPES:
            return _worker_event(WORKER_EVENT_TYPES[kind], event)
        cls = TASK_EVENT_TYPES.get(kind) if isinstance(kind, str) else None
        if cls is None or (kind == "task-rejected" and event.get("requeue")):
            return None
        task_id = event.get("uuid")
        if not isinstance(task_id, str):
            raise InvalidEvent(f"uuid: a {kind} event needs the task id, got {task_id!r}")
        assert cls.status is not None
        attempt = self._attempt(task_id, event)
        fields: dict[str, Any] = {
            "task_id": task_id,
            "task_name": event.get("name"),
            "attempt": attempt,
            "event_id": step_event_id(task_id, cls.status, attempt),
            "occurred_at": _when(event.get("timestamp")),
            "emitter": _emitter(event),
            **self._details(str(kind), event),
        }
        return event_from(cls, fields)  # type: ignore[return-value]

    def _attempt(self, task_id: str, event: Mapping[str, Any]) -> int:
        retries, oldest = event.get("retries"), self._open.get(task_id)
        if isinstance(retries, int) and retries >= 0:  # task-sent, task-received: the attempt announced
            attempt = retries
            still_open = retries if oldest is None else max(oldest, retries - 1)
        else:  # what happens to a running attempt: the oldest one not ended
            attempt = still_open = oldest if oldest is not None else 0
        if event.get("type") == "task-retried":
            still_open = max(still_open, attempt + 1)
        self._open[task_id] = still_open
        self._open.move_to_end(task_id)
        while len(self._open) > self._remembered:
            self._open.popitem(last=False)
        return attempt

    def _details(self, kind: str, event: Mapping[str, Any]) -> dict[str, Any]:
        if kind in ("task-sent", "task-received"):
            placed = linkage(event, exchange=event.get("exchange"), routing_key=event.get("routing_key"),
                             queue=event.get("queue"), aware=_eta)  # fmt: skip
            return {"args": self._args(event.get("args")), "kwargs": self._kwargs(event.get("kwargs")),
                    "eta": _eta(event.get("eta")), **placed}  # fmt: skip
        if kind == "task-succeeded":
            return {"result": self._reprs.read("result", event.get("result")), "runtime": event.get("runtime")}
        if kind in ("task-failed", "task-retried"):
            return {**self._exception(event.get("exception")), "traceback": event.get("traceback")}
        if kind == "task-rejected":
            return {"reason": "rejected by the worker (not requeued)"}
        if kind == "task-revoked":
            terminated = bool(event.get("terminated"))
            reason = "expired" if event.get("expired") else "terminated" if terminated else "revoked"
            return {"reason": reason, "terminated": terminated}
        return {}

    def _args(self, text: Any) -> list[Any] | None:
        value = self._reprs.read("args", text)
        return value if value is None or isinstance(value, list) else [value]

    def _kwargs(self, text: Any) -> dict[str, Any] | None:
        value = self._reprs.read("kwargs", text)
        return value if value is None or isinstance(value, dict) else {"repr": text}

    def _exception(self, text: Any) -> dict[str, Any]:
        """``ValueError('no stock')`` → type ValueError, args ['no stock'], message 'no stock'."""
        if not isinstance(text, str) or not text:
            return {"exc_type": "Exception", "exc_message": None if text is None else str(text)}
        match = _EXCEPTION.match(text)
        if match is None:
            return {"exc_type": "Exception", "exc_message": text}
        args = self._reprs.read("exc_args", f"({match.group(2)},)" if match.group(2).strip() else "()")
        if not isinstance(args, list):
            return {"exc_type": match.group(1), "exc_message": match.group(2)}
        return exception_fields(match.group(1), args)


def exception_fields(exc_type: str, args: list[Any]) -> dict[str, Any]:
    """A Celery failure's fields from its exception's class name and arguments, as
    ``str(exception)`` reads them: one argument is the message, several are joined."""
    message = str(args[0]) if len(args) == 1 else ", ".join(map(str, args)) if args else ""
    return {"exc_type": exc_type, "exc_args": args, "exc_message": message}


def _worker_event(cls: type[WorkerEvent], event: Mapping[str, Any]) -> AnyWorkerEvent:
    """A worker's event: its hostname and time are required (they are its identity: the
    view's key, the event id); the rest is kept as sent."""
    kind, hostname = event.get("type"), event.get("hostname")
    if not isinstance(hostname, str) or not hostname:
        raise InvalidEvent(f"hostname: a {kind} event needs the worker's hostname, got {hostname!r}")
    try:
        occurred_at = _when(event.get("timestamp"))
    except (OverflowError, OSError, ValueError):  # out of the calendar, or NaN
        occurred_at = None
    if occurred_at is None:
        raise InvalidEvent(f"timestamp: a {kind} event needs its time (seconds since the epoch), "
                           f"got {event.get('timestamp')!r}")  # fmt: skip
    fields: dict[str, Any] = {
        "hostname": hostname,
        "occurred_at": occurred_at,
        "event_id": worker_event_id(hostname, cls.model_fields["type"].default, occurred_at),
        "emitter": _emitter(event),
        **{name: event.get(name) for name in _WORKER_DETAILS},
    }
    return event_from(cls, fields)  # type: ignore[return-value]


E = TypeVar("E", bound=BaseModel)


def event_from(cls: type[E], fields: Mapping[str, Any]) -> E:
    """``cls`` built from ``fields`` (a None is left to the default); ``InvalidEvent``
    naming the field for values that make no valid event."""
    try:
        return cls.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise InvalidEvent(describe_validation_error(exc)) from None


def _when(timestamp: Any) -> datetime | None:
    """Celery stamps events with ``time.time()``: seconds since the epoch, UTC by nature."""
    if isinstance(timestamp, int | float):
        return datetime.fromtimestamp(timestamp, UTC)
    return None


def _eta(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _emitter(event: Mapping[str, Any]) -> Emitter | dict[str, Any] | None:
    """The worker (``celery@host``) that sent the event, on its host, with its pid (the
    publisher of a ``task-sent``: no worker). Built once per emitter (a fleet has few);
    fields it refuses are left to the event's validation, which names them."""
    hostname = event.get("hostname")
    if not isinstance(hostname, str) or not hostname:
        return None
    pid = event.get("pid")
    host = hostname.rpartition("@")[2] or hostname
    pid = pid if isinstance(pid, int) and pid >= 0 else 0
    worker = hostname if event.get("type") != "task-sent" else None
    try:
        return _known_emitter(host, pid, worker)
    except ValidationError:
        return {"host": host, "pid": pid, "worker": worker}


@lru_cache(maxsize=4096, typed=True)
def _known_emitter(host: str, pid: int, worker: str | None) -> Emitter:
    return Emitter(host=host, pid=pid, worker=worker)  # frozen: safe to share between events


@dataclass(frozen=True, slots=True)
class Imported:
    """What ``import_celery_events`` appended, and the lines it skipped (no task
    transition or worker event: ``translate`` gave None)."""

    events: int
    skipped: int


def import_celery_events(lines: Iterable[str], ledger: Ledger, *, batch: int = 1000,
                         on_progress: Callable[[int], None] | None = None) -> Imported:  # fmt: skip
    """Append the ledger events of Celery's event dicts given as JSON lines (one event a
    line, as a monitor captured them), ``batch`` at a time, as they are (``emit_many``: a
    history is imported whole, without the run rules). The first line that is not JSON, or
    a task or worker event that makes no valid event, stops the import with ``InvalidEvent``
    naming the line and the field; what was appended before it stays, and importing the
    file again once that line is fixed is harmless (the same events have the same ids)."""
    translator, pending = CeleryEventTranslator(), []
    appended = skipped = read = 0
    for number, text in enumerate(lines, start=1):
        read = number
        if not text.strip():
            continue
        try:
            data = json.loads(text)
            event = translator.translate(data) if isinstance(data, dict) else None
        except (ValueError, InvalidEvent) as exc:
            reason = "not JSON" if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise InvalidEvent(f"line {number}: {reason}") from None
        if event is None:
            skipped += 1
            continue
        pending.append(event)
        if len(pending) >= batch:
            appended += len(ledger.emit_many(pending))
            pending = []
            if on_progress is not None:
                on_progress(read)
    appended += len(ledger.emit_many(pending)) if pending else 0
    if on_progress is not None:
        on_progress(read)
    return Imported(appended, skipped)
