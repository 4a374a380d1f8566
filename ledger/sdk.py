"""The emit side: what a worker calls to record its tasks' transitions.

Two kinds of call, two failure policies. Direct calls (``emit``, ``pending`` … ``revoked``,
the periodic methods) raise: the caller asked to record something and must know it was
not (``AppendError`` from the log, ``InvalidEvent`` for bad input, ``InvalidTransition``
for a step the run cannot take). ``track`` and the ``task`` decorator wrap the user's own
work (``ledger.tracked``): there, a failure to record never breaks the task; it is logged
and counted (``Ledger.emit_errors``, ``Ledger.refused_steps``), and the task's own outcome
(its result, or its exception) is what the caller sees.

Every step of a task goes through its run (``domain.aggregates.TaskRun``) before anything
is appended: an impossible one (succeed twice, start after a revoke) is refused, and each
appended event takes its id from the step, so the same transition sent twice is held once.
``emit``/``emit_many`` append events as given: the way to import a history wholesale.

Importing an existing history: every direct call also takes ``attempt``, ``occurred_at``,
``event_id`` and ``emitter`` (the original worker's host, pid and name), validated like
everything else. Payload rules: ``ledger.payloads``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, ParamSpec, TypedDict, TypeVar, Unpack
from uuid import UUID

from pydantic import ValidationError

from ledger.codec import PLAIN, Codec
from ledger.domain.aggregates import InvalidTransition, PeriodicTask, TaskRun
from ledger.domain.events import (
    Emitter,
    FailureGroupReopened,
    FailureGroupResolved,
    LedgerEvent,
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
from ledger.payloads import InvalidEvent, JsonPolicy, NotSerializable
from ledger.runs import Registry, new_periodic_tasks, new_task_runs
from ledger.tracked import Retry, Run, tracked
from ledger.wire import describe_validation_error, encode

__all__ = ["InvalidEvent", "InvalidTransition", "Ledger", "Linkage", "NotSerializable", "Origin", "Retry", "Run"]

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
E = TypeVar("E")
Args = Sequence[Any] | None
Kwargs = Mapping[str, Any] | None


class Linkage(TypedDict, total=False):
    """Where a task stands in a workflow and how it was routed (any of them, on any step)."""

    root_id: str | None
    """The workflow's first task (default for ``track``/``task``: the enclosing run's root)."""
    parent_id: str | None
    """The task that sent this one (default for ``track``/``task``: the enclosing run)."""
    group_id: str | None
    callback_id: str | None
    """The chord callback that runs once this task's group has finished."""
    queue: str | None
    exchange: str | None
    routing_key: str | None
    expires: datetime | None


class Origin(Linkage, total=False):
    """Where and when a step happened, for importing history; each defaults to now, here."""

    attempt: int | None
    """The attempt the step belongs to (default: the run's current one, 0 for a new run)."""
    occurred_at: datetime
    event_id: UUID | str
    """Default: derived from the step (task id, status, attempt)."""
    emitter: Emitter | Mapping[str, Any]
    """The process that took the step: ``{"host": …, "pid": …, "worker": …}``."""


class Ledger:
    """Records task transitions into an ``EventLog``, through a ``Codec``."""

    def __init__(self, log: EventLog, codec: Codec = PLAIN, *, strict: bool = False, worker: str | None = None,
                 runs: Registry[TaskRun] | None = None,
                 periodic: Registry[PeriodicTask] | None = None) -> None:  # fmt: skip
        self.log, self.codec, self.strict, self.worker = log, codec, strict, worker
        self.payloads = JsonPolicy(strict=strict)
        self.runs = runs if runs is not None else new_task_runs()
        self.periodic = periodic if periodic is not None else new_periodic_tasks()
        self.emit_errors = 0
        """Emissions that failed inside ``track``/``task`` or a recorder (logged, never raised there)."""
        self.refused_steps = 0
        """Steps refused there as impossible (``InvalidTransition``; logged, never raised there)."""
        self._lock = threading.Lock()
        self._event(Emitter, host="-", pid=0, worker=worker)  # a bad worker fails now

    # -- direct calls: they raise -----------------------------------------------------------
    def emit(self, event: LedgerEvent) -> Position:
        """Append one event as given; ``AppendError`` if the log did not acknowledge it."""
        return self.log.append([encode(event, self.codec)])[0]

    def emit_many(self, events: Iterable[LedgerEvent]) -> list[Position]:
        """Append events as given, in one call, in order (one batch for the producer)."""
        records = [encode(event, self.codec) for event in events]
        return self.log.append(records) if records else []

    def close(self) -> None:
        """Flush what the log still holds and release it (call on worker shutdown)."""
        self.log.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def pending(self, task_id: str, name: str | None = None, *, args: Args = None, kwargs: Kwargs = None,
                eta: datetime | None = None, **origin: Unpack[Origin]) -> Position:  # fmt: skip
        return self._step(TaskPending, task_id, name, origin, eta=eta, **self._payload(args, kwargs))

    def received(self, task_id: str, name: str | None = None, *, args: Args = None, kwargs: Kwargs = None,
                 eta: datetime | None = None, **origin: Unpack[Origin]) -> Position:  # fmt: skip
        return self._step(TaskReceived, task_id, name, origin, eta=eta, **self._payload(args, kwargs))

    def started(self, task_id: str, name: str | None = None, *, args: Args = None, kwargs: Kwargs = None,
                **origin: Unpack[Origin]) -> Position:  # fmt: skip
        return self._step(TaskStarted, task_id, name, origin, **self._payload(args, kwargs))

    def retried(self, task_id: str, name: str | None = None, *, exc: BaseException | None = None,
                eta: datetime | None = None, countdown: float | None = None,
                **origin: Unpack[Origin]) -> Position:  # fmt: skip
        failure = self.payloads.exception(exc) if exc is not None else {}
        return self._step(TaskRetried, task_id, name, origin, eta=eta, countdown=countdown, **failure)

    def failed(self, task_id: str, name: str | None = None, *, exc: BaseException, runtime: float | None = None,
               **origin: Unpack[Origin]) -> Position:  # fmt: skip
        failure = self.payloads.exception(exc)
        return self._step(TaskFailed, task_id, name, origin, runtime=runtime, **failure)

    def succeeded(self, task_id: str, name: str | None = None, *, result: Any = None, runtime: float | None = None,
                  **origin: Unpack[Origin]) -> Position:  # fmt: skip
        result = self.payloads.value("result", result)
        return self._step(TaskSucceeded, task_id, name, origin, result=result, runtime=runtime)

    def revoked(self, task_id: str, name: str | None = None, *, reason: str | None = None, terminated: bool = False,
                **origin: Unpack[Origin]) -> Position:  # fmt: skip
        return self._step(TaskRevoked, task_id, name, origin, reason=reason, terminated=terminated)

    # -- periodic tasks ---------------------------------------------------------------------
    def resolve_failure_group(self, fingerprint: str, *, resolved_by: str | None = None, note: str | None = None,
                              occurred_at: datetime | None = None) -> Position:  # fmt: skip
        """Mark a failure group resolved (``ledger.projections.failures``): an event in the
        log, keyed by the fingerprint, so a rebuild keeps it; a failure of the group that
        occurs after it reopens the group."""
        return self.emit(self._event(FailureGroupResolved, fingerprint=fingerprint, resolved_by=resolved_by,
                                     note=note, occurred_at=occurred_at))  # fmt: skip

    def reopen_failure_group(self, fingerprint: str, *, reopened_by: str | None = None, note: str | None = None,
                             occurred_at: datetime | None = None) -> Position:  # fmt: skip
        """Reopen a resolved failure group without waiting for its next failure (the fix did
        not hold): an event in the log, as a resolution is; a later resolution resolves it again."""
        return self.emit(self._event(FailureGroupReopened, fingerprint=fingerprint, reopened_by=reopened_by,
                                     note=note, occurred_at=occurred_at))  # fmt: skip

    def register_periodic(self, name: str, task: str, interval_seconds: float) -> Position:
        self._event(PeriodicTaskRegistered, name=name, task=task, interval_seconds=interval_seconds)
        return self._periodic_step(name, lambda entry: entry.register(task, interval_seconds))[0]

    def unregister_periodic(self, name: str, reason: str | None = None) -> Position:
        self._event(PeriodicTaskUnregistered, name=name, reason=reason)
        return self._periodic_step(name, lambda entry: entry.disable(reason))[0]

    def delay_periodic(self, name: str, dispatch: Callable[[], str], *, task: str | None = None) -> str:
        """The seed's ``PeriodicTaskMeta.delay()``: run ``dispatch`` (it sends the task and
        returns its id), then record the run. Returns the dispatched task id. A bad name or
        a disabled entry dispatches nothing."""
        self._event(PeriodicTaskTriggered, name=name, task_id="-", task=task)
        self.periodic.get(name).check_delay()
        task_id = dispatch()
        try:
            self._periodic_step(name, lambda entry: entry.delay(task_id), task=task)
        except Exception as exc:
            exc.add_note(f"periodic {name!r} was dispatched as task {task_id!r} but not counted")
            raise
        return task_id

    # -- the user's code path: never broken by the ledger -----------------------------------
    def track(self, task_id: str, name: str | None = None, *, attempt: int | None = None,
              args: Args = None, kwargs: Kwargs = None, **linkage: Unpack[Linkage]) -> Run:  # fmt: skip
        """``with ledger.track(id, name) as run: run.result = work()`` (``async with`` too).
        STARTED on enter; on exit SUCCEEDED (with ``run.result``), RETRY (the body raised
        ``Retry``) or FAILURE, with the runtime. Exceptions always propagate; recording
        failures never do. Inside another tracked run, the task is that run's child
        (``parent_id``, ``root_id``) unless ``linkage`` says otherwise."""
        return Run(self, task_id, name, attempt=attempt, args=args, kwargs=kwargs, linkage=linkage)

    def task(self, name: str | None = None) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Track every call of the decorated function (name: its dotted path by default);
        ``async def`` functions are tracked when awaited. Each call gets a new task id
        (uuid4) unless the caller passes ``task_id=...``: the wrapper strips that keyword.
        A call made inside another tracked run is recorded as that run's child."""
        return lambda function: tracked(self, function, name)

    def quietly(self, what: str, record: Callable[[], object]) -> None:
        """Run ``record``; on any failure log it and count it: a refused step in
        ``refused_steps`` (a warning), anything else in ``emit_errors``."""
        try:
            record()
        except InvalidTransition as refused:
            with self._lock:
                self.refused_steps += 1
            log.warning("ledger: refused to record %s: %s", what, refused)
        except Exception:
            with self._lock:
                self.emit_errors += 1
            log.exception("ledger: could not record %s; the task itself is not affected", what)

    # -- building events --------------------------------------------------------------------
    def _step(self, cls: type[TaskEvent], task_id: str, name: str | None, origin: Origin, **fields: Any) -> Position:
        """Take one step of ``task_id``'s run, then append its event (``cls``)."""
        assert cls.status is not None
        run = self.runs.get(task_id)
        step = run.plan(cls.status, origin.get("attempt"))
        given = {**origin, **fields, "attempt": step.attempt, "event_id": origin.get("event_id") or step.event_id}
        event = self._event(cls, task_id=task_id, task_name=name, **given)
        run.take(step, event.occurred_at)
        return self.runs.keep_while(task_id, run, lambda: self.emit(event))

    def _periodic_step(self, name: str, step: Callable[[PeriodicTask], None], *,
                       task: str | None = None) -> list[Position]:  # fmt: skip
        entry = self.periodic.get(name)
        if task is not None and entry.task is None:
            entry.task = task  # a run of an entry registered elsewhere names its task
        try:
            step(entry)
        except InvalidTransition:
            raise
        except ValueError as exc:
            raise InvalidEvent(str(exc)) from None
        events = entry.to_ledger_events(self._emitter(None))
        return self.periodic.keep_while(name, entry, lambda: self.emit_many(events))

    def _event(self, cls: Callable[..., E], **fields: Any) -> E:
        """Build a model, turning pydantic's error into ``InvalidEvent`` naming the field."""
        try:
            if cls is not Emitter:
                fields["emitter"] = self._emitter(fields.get("emitter"))
            return cls(**{k: v for k, v in fields.items() if v is not None})  # None: the default
        except ValidationError as exc:
            raise InvalidEvent(describe_validation_error(exc)) from exc

    def _emitter(self, given: Emitter | Mapping[str, Any] | None) -> Emitter:
        if given is None:
            return this_process(self.worker)
        if isinstance(given, Emitter):
            return given
        try:
            return Emitter.model_validate(given)
        except ValidationError as exc:
            raise InvalidEvent("emitter." + describe_validation_error(exc)) from exc

    def _payload(self, args: Args, kwargs: Kwargs) -> dict[str, Any]:
        return {"args": self.payloads.args(args), "kwargs": self.payloads.kwargs(kwargs)}

