"""The emit side: what a worker calls to record its tasks' transitions.

Two kinds of call, two failure policies. Direct calls (``emit``, ``pending`` … ``revoked``,
the periodic methods) raise: the caller asked to record something and must know it was
not (``AppendError`` from the log, ``InvalidEvent`` for bad input). ``track`` and the
``task`` decorator wrap the user's own work: there, a failure to record never breaks the
task; it is logged and counted in ``Ledger.emit_errors``, and the task's own outcome
(its result, or its exception) is what the caller sees.

Payloads must be JSON. Values that are not (a ``Decimal``, a model instance) are recorded
as their ``repr()`` and logged at WARNING with the field's name; ``strict=True`` raises
``NotSerializable`` instead, for development and tests.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from time import perf_counter
from types import TracebackType
from typing import Any, Final, ParamSpec, TypeVar
from uuid import uuid4

from pydantic import JsonValue, ValidationError

from ledger.codec import PLAIN, Codec
from ledger.domain.events import (
    Emitter,
    PeriodicTaskEvent,
    PeriodicTaskRegistered,
    PeriodicTaskTriggered,
    PeriodicTaskUnregistered,
    TaskEvent,
    TaskFailed,
    TaskPending,
    TaskReceived,
    TaskRetried,
    TaskRevoked,
    TaskStarted,
    TaskSucceeded,
    this_process,
)
from ledger.eventlog.base import EventLog, Position
from ledger.wire import describe_validation_error, encode

__all__ = ["InvalidEvent", "Ledger", "NotSerializable", "Retry", "Run"]

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
E = TypeVar("E")
Args = Sequence[Any] | None
Kwargs = Mapping[str, Any] | None

MAX_MESSAGE_CHARS: Final = 4096
MAX_TRACEBACK_CHARS: Final = 32_768
MAX_REPR_CHARS: Final = 4096
"""Bounds on text taken from exceptions and reprs, so one event stays well under the wire
limit (``wire.MAX_EVENT_BYTES``); tracebacks keep their end, where the error is."""


class InvalidEvent(ValueError):
    """Input that makes no valid event; the message names the field and the rule."""


class NotSerializable(InvalidEvent):
    """``strict=True``: an args/kwargs/result value is not JSON."""


class Retry(Exception):
    """Raised by a tracked body to say "retry me": recorded as RETRY, then re-raised so the
    caller's retry machinery still runs."""

    def __init__(
        self,
        *,
        eta: datetime | None = None,
        countdown: float | None = None,
        exc: BaseException | None = None,
    ) -> None:
        super().__init__(f"retry (eta={eta}, countdown={countdown}, exc={exc!r})")
        self.eta, self.countdown, self.exc = eta, countdown, exc


class Ledger:
    """Records task transitions into an ``EventLog``, through a ``Codec``."""

    def __init__(self, log: EventLog, codec: Codec = PLAIN, *, strict: bool = False,
                 worker: str | None = None) -> None:
        self.log, self.codec, self.strict, self.worker = log, codec, strict, worker
        self.emit_errors = 0
        """Emissions that failed inside ``track``/``task`` (logged, never raised there)."""
        self._lock = threading.Lock()
        self._event(Emitter, host="-", pid=0, worker=worker)  # a bad worker fails now

    # -- direct calls: they raise -----------------------------------------------------------
    def emit(self, event: TaskEvent | PeriodicTaskEvent) -> Position:
        """Append one event; ``AppendError`` if the log did not acknowledge it."""
        return self.log.append([encode(event, self.codec)])[0]

    def emit_many(self, events: Iterable[TaskEvent | PeriodicTaskEvent]) -> list[Position]:
        """Append events in one call, in order (one batch for the producer)."""
        records = [encode(event, self.codec) for event in events]
        return self.log.append(records) if records else []

    def close(self) -> None:
        """Flush what the log still holds and release it (call on worker shutdown)."""
        self.log.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def pending(self, task_id: str, name: str | None = None, *, args: Args = None,
                kwargs: Kwargs = None, eta: datetime | None = None, attempt: int = 0) -> Position:
        payload = self._payload(args, kwargs)
        return self._task(TaskPending, task_id, name, attempt, eta=eta, **payload)

    def received(self, task_id: str, name: str | None = None, *, args: Args = None,
                 kwargs: Kwargs = None, eta: datetime | None = None, attempt: int = 0) -> Position:
        payload = self._payload(args, kwargs)
        return self._task(TaskReceived, task_id, name, attempt, eta=eta, **payload)

    def started(self, task_id: str, name: str | None = None, *, args: Args = None,
                kwargs: Kwargs = None, attempt: int = 0) -> Position:
        return self._task(TaskStarted, task_id, name, attempt, **self._payload(args, kwargs))

    def retried(self, task_id: str, name: str | None = None, *, exc: BaseException | None = None,
                eta: datetime | None = None, countdown: float | None = None,
                attempt: int = 0) -> Position:
        failure = describe_exception(exc) if exc is not None else {}
        return self._task(TaskRetried, task_id, name, attempt, eta=eta, countdown=countdown,
                          **failure)

    def failed(self, task_id: str, name: str | None = None, *, exc: BaseException,
               runtime: float | None = None, attempt: int = 0) -> Position:
        failure = describe_exception(exc)
        return self._task(TaskFailed, task_id, name, attempt, runtime=runtime, **failure)

    def succeeded(self, task_id: str, name: str | None = None, *, result: Any = None,
                  runtime: float | None = None, attempt: int = 0) -> Position:
        result = self._json("result", result)
        return self._task(TaskSucceeded, task_id, name, attempt, result=result, runtime=runtime)

    def revoked(self, task_id: str, name: str | None = None, *, reason: str | None = None,
                terminated: bool = False, attempt: int = 0) -> Position:
        return self._task(TaskRevoked, task_id, name, attempt, reason=reason,
                          terminated=terminated)

    # -- periodic tasks ---------------------------------------------------------------------
    def register_periodic(self, name: str, task: str, interval_seconds: float) -> Position:
        return self.emit(self._event(PeriodicTaskRegistered, name=name, task=task,
                                     interval_seconds=interval_seconds))

    def unregister_periodic(self, name: str, reason: str | None = None) -> Position:
        return self.emit(self._event(PeriodicTaskUnregistered, name=name, reason=reason))

    def delay_periodic(self, name: str, dispatch: Callable[[], str], *,
                       task: str | None = None) -> str:
        """The seed's ``PeriodicTaskMeta.delay()``: run ``dispatch`` (it sends the task and
        returns its id), then record the run. Returns the dispatched task id."""
        self._event(PeriodicTaskTriggered, name=name, task_id="-", task=task)  # bad name: no run
        task_id = dispatch()
        try:
            self.emit(self._event(PeriodicTaskTriggered, name=name, task_id=task_id, task=task))
        except Exception as exc:
            exc.add_note(f"periodic {name!r} was dispatched as task {task_id!r} but not counted")
            raise
        return task_id

    # -- the user's code path: never broken by the ledger -----------------------------------
    def track(self, task_id: str, name: str | None = None, *, attempt: int = 0,
              args: Args = None, kwargs: Kwargs = None) -> Run:
        """``with ledger.track(id, name) as run: run.result = work()``. STARTED on enter;
        on exit SUCCEEDED (with ``run.result``), RETRY (the body raised ``Retry``) or
        FAILURE, with the runtime. Exceptions always propagate; recording failures never do."""
        return Run(self, task_id, name, attempt=attempt, args=args, kwargs=kwargs)

    def task(self, name: str | None = None) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Track every call of the decorated function (name: its dotted path by default).
        Each call gets a new task id (uuid4) unless the caller passes ``task_id=...``: the
        wrapper strips that keyword before calling the function."""

        def decorate(function: Callable[P, R]) -> Callable[P, R]:
            task_name = name or f"{function.__module__}.{function.__qualname__}"

            @functools.wraps(function)
            def tracked(*args: P.args, **kwargs: P.kwargs) -> R:
                given = kwargs.pop("task_id", None)
                task_id = str(uuid4()) if given is None else str(given)
                with self.track(task_id, task_name, args=args, kwargs=kwargs) as run:
                    result = function(*args, **kwargs)
                    run.result = result
                return result

            return tracked

        return decorate

    def quietly(self, what: str, record: Callable[[], object]) -> None:
        """Run ``record``; on any failure log it and count it in ``emit_errors``."""
        try:
            record()
        except Exception:
            with self._lock:
                self.emit_errors += 1
            log.exception("ledger: could not record %s; the task itself is not affected", what)

    # -- building events --------------------------------------------------------------------
    def _task(self, cls: Callable[..., TaskEvent], task_id: str, name: str | None, attempt: int,
              **fields: Any) -> Position:
        event = self._event(cls, task_id=task_id, task_name=name, attempt=attempt, **fields)
        return self.emit(event)

    def _event(self, cls: Callable[..., E], **fields: Any) -> E:
        """Build a model, turning pydantic's error into ``InvalidEvent`` naming the field."""
        try:
            if cls is not Emitter:
                fields["emitter"] = this_process(self.worker)
            return cls(**fields)
        except ValidationError as exc:
            raise InvalidEvent(describe_validation_error(exc)) from exc

    def _payload(self, args: Args, kwargs: Kwargs) -> dict[str, Any]:
        return {
            "args": None if args is None else [
                self._json(f"args[{index}]", value) for index, value in enumerate(args)
            ],
            "kwargs": None if kwargs is None else {
                self._key(key): self._json(f"kwargs[{key!r}]", value)
                for key, value in kwargs.items()
            },
        }

    def _json(self, field: str, value: Any) -> JsonValue:
        """``value`` as JSON data, as Celery's json serializer would send it (tuples become
        lists), or the documented fallback when it is not JSON."""
        try:
            data: JsonValue = json.loads(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError) as exc:
            return self._fallback(field, value, str(exc))
        return data

    def _key(self, key: object) -> str:
        return key if isinstance(key, str) else self._fallback("kwargs key", key, "not a str")

    def _fallback(self, field: str, value: object, why: str) -> str:
        if self.strict:
            raise NotSerializable(f"{field}: {type(value).__name__} is not JSON ({why})")
        log.warning("ledger: %s is not JSON (%s); recording its repr()", field, why)
        return _safe_repr(value)


class Run:
    """One tracked execution (``Ledger.track``): set ``result`` before the block ends."""

    def __init__(self, ledger: Ledger, task_id: str, name: str | None, *, attempt: int = 0,
                 args: Args = None, kwargs: Kwargs = None) -> None:
        self.ledger, self.task_id, self.name, self.attempt = ledger, task_id, name, attempt
        self.args, self.kwargs = args, kwargs
        self.result: Any = None
        self.runtime: float | None = None
        self._began = 0.0

    def __enter__(self) -> Run:
        self.ledger.quietly(f"task {self.task_id!r} started", lambda: self.ledger.started(
            self.task_id, self.name, args=self.args, kwargs=self.kwargs, attempt=self.attempt))
        self._began = perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Record the outcome; returning None lets the body's exception propagate as is."""
        self.runtime = perf_counter() - self._began
        outcome = "succeeded" if exc is None else "retried" if isinstance(exc, Retry) else "failed"
        self.ledger.quietly(f"task {self.task_id!r} {outcome}", lambda: self._record(exc))

    def _record(self, exc: BaseException | None) -> None:
        ledger, task_id, name, attempt = self.ledger, self.task_id, self.name, self.attempt
        if exc is None:
            ledger.succeeded(task_id, name, result=self.result, runtime=self.runtime,
                             attempt=attempt)
        elif isinstance(exc, Retry):
            ledger.retried(task_id, name, exc=exc.exc, eta=exc.eta, countdown=exc.countdown,
                           attempt=attempt)
        else:
            ledger.failed(task_id, name, exc=exc, runtime=self.runtime, attempt=attempt)


def describe_exception(exc: BaseException) -> dict[str, str]:
    """exc_type (the qualified class name), exc_message and traceback, bounded in size."""
    cls = type(exc)
    qualified = cls.__qualname__
    if cls.__module__ != "builtins":
        qualified = f"{cls.__module__}.{qualified}"
    return {
        "exc_type": qualified,
        "exc_message": _safe_text(str, exc)[:MAX_MESSAGE_CHARS],
        "traceback": "".join(traceback.format_exception(exc))[-MAX_TRACEBACK_CHARS:],
    }


def _safe_repr(value: object) -> str:
    return _safe_text(repr, value)[:MAX_REPR_CHARS]


def _safe_text(render: Callable[[object], str], value: object) -> str:
    try:
        return render(value)
    except Exception:  # a broken __str__/__repr__ must not lose the event
        return object.__repr__(value)
