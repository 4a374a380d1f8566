"""The emit side's rules, as ``eventsourcing`` aggregates: what a task run and a periodic
task may do next, and the ledger events each step produces.

A worker (or a scheduler) that holds a run's state uses these to refuse impossible steps
(start a finished task, say) before anything reaches the log; ``to_ledger_events`` turns
the recorded steps into wire events. The projector does not use them: it folds plain
data (``fold.py``), several times cheaper per event than an ``Aggregate`` step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event
from pydantic import JsonValue

from ledger.domain.events import (
    AnyEvent,
    PeriodicTaskRegistered,
    PeriodicTaskTriggered,
    PeriodicTaskUnregistered,
    TaskFailed,
    TaskPending,
    TaskReceived,
    TaskRetried,
    TaskRevoked,
    TaskStarted,
    TaskSucceeded,
)
from ledger.domain.statuses import TaskStatus

__all__ = ["TRANSITIONS", "InvalidTransition", "PeriodicTask", "TaskRun"]

TASK_NAMESPACE: Final = UUID("6f0f3c6e-2f3b-5d1e-9a55-4c1c8e6b7a01")
PERIODIC_NAMESPACE: Final = UUID("0b7d2e59-8f41-5c3a-b1f2-93d5e7a4c602")

_S = TaskStatus
TRANSITIONS: Final[Mapping[TaskStatus | None, frozenset[TaskStatus]]] = MappingProxyType(
    {
        None: frozenset({_S.PENDING, _S.RECEIVED, _S.STARTED, _S.REVOKED}),
        _S.PENDING: frozenset({_S.RECEIVED, _S.STARTED, _S.REVOKED}),
        _S.RECEIVED: frozenset({_S.STARTED, _S.FAILURE, _S.REVOKED}),
        _S.STARTED: frozenset({_S.RETRY, _S.FAILURE, _S.DONE, _S.REVOKED}),
        # A retry ends the attempt; the next attempt starts over.
        _S.RETRY: frozenset({_S.PENDING, _S.RECEIVED, _S.STARTED, _S.REVOKED}),
        _S.FAILURE: frozenset(),
        _S.DONE: frozenset(),
        _S.REVOKED: frozenset(),
    }
)
"""Status (None: nothing recorded yet) → the statuses a run may move to. Finished states
(FAILURE, DONE, REVOKED) lead nowhere: a retried task continues from RETRY instead."""


class InvalidTransition(ValueError):
    """A step the current state does not allow; the message names both."""


def _event_id(recorded: Any) -> UUID:
    """Deterministic, so translating the same recorded step twice gives the same ledger
    event id (a re-sent append is a harmless duplicate). The step's kind and timestamp are
    part of it because two processes may each hold a run of the same task at version n."""
    name = f"{recorded.originator_version}:{type(recorded).__name__}:{recorded.timestamp}"
    return uuid5(recorded.originator_id, name)


class TaskRun(Aggregate):
    """One task id's life. ``attempt`` counts retries: a retry ends attempt n, and the
    steps after it belong to attempt n + 1."""

    @staticmethod
    def create_id(task_id: str) -> UUID:
        return uuid5(TASK_NAMESPACE, task_id)

    @event("Opened")
    def __init__(
        self,
        task_id: str,
        name: str | None = None,
        args: list[JsonValue] | None = None,
        kwargs: dict[str, JsonValue] | None = None,
    ) -> None:
        self.task_id = task_id
        self.name = name
        self.args = args
        self.kwargs = kwargs
        self.status: TaskStatus | None = None
        self.attempt = 0

    def enqueue(self, eta: datetime | None = None) -> None:
        self._allow(TaskStatus.PENDING)
        self._enqueued(attempt=self.attempt, eta=eta)

    def receive(self, eta: datetime | None = None) -> None:
        self._allow(TaskStatus.RECEIVED)
        self._received(attempt=self.attempt, eta=eta)

    def start(self) -> None:
        self._allow(TaskStatus.STARTED)
        self._started(attempt=self.attempt)

    def retry(
        self,
        exc_type: str | None = None,
        exc_message: str | None = None,
        eta: datetime | None = None,
        countdown: float | None = None,
    ) -> None:
        self._allow(TaskStatus.RETRY)
        self._retried(
            attempt=self.attempt,
            exc_type=exc_type,
            exc_message=exc_message,
            eta=eta,
            countdown=countdown,
        )

    def fail(
        self,
        exc_type: str,
        exc_message: str | None = None,
        traceback: str | None = None,
        runtime: float | None = None,
    ) -> None:
        self._allow(TaskStatus.FAILURE)
        self._failed(
            attempt=self.attempt,
            exc_type=exc_type,
            exc_message=exc_message,
            traceback=traceback,
            runtime=runtime,
        )

    def succeed(self, result: JsonValue = None, runtime: float | None = None) -> None:
        self._allow(TaskStatus.DONE)
        self._succeeded(attempt=self.attempt, result=result, runtime=runtime)

    def revoke(self, reason: str | None = None, terminated: bool = False) -> None:
        self._allow(TaskStatus.REVOKED)
        self._revoked(attempt=self.attempt, reason=reason, terminated=terminated)

    def _allow(self, target: TaskStatus) -> None:
        if target not in TRANSITIONS[self.status]:
            current = self.status.value if self.status else "nothing recorded"
            allowed = ", ".join(sorted(TRANSITIONS[self.status])) or "none: it is finished"
            raise InvalidTransition(
                f"task {self.task_id!r}: cannot go from {current} to {target.value} "
                f"(allowed: {allowed})"
            )

    # The recorded steps: each body only moves the state, so replaying them is exact.
    @event("Enqueued")
    def _enqueued(self, attempt: int, eta: datetime | None) -> None:
        self.status = TaskStatus.PENDING

    @event("Received")
    def _received(self, attempt: int, eta: datetime | None) -> None:
        self.status = TaskStatus.RECEIVED

    @event("Started")
    def _started(self, attempt: int) -> None:
        self.status = TaskStatus.STARTED

    @event("Retried")
    def _retried(
        self,
        attempt: int,
        exc_type: str | None,
        exc_message: str | None,
        eta: datetime | None,
        countdown: float | None,
    ) -> None:
        self.status = TaskStatus.RETRY
        self.attempt = attempt + 1

    @event("Failed")
    def _failed(
        self,
        attempt: int,
        exc_type: str,
        exc_message: str | None,
        traceback: str | None,
        runtime: float | None,
    ) -> None:
        self.status = TaskStatus.FAILURE

    @event("Succeeded")
    def _succeeded(self, attempt: int, result: JsonValue, runtime: float | None) -> None:
        self.status = TaskStatus.DONE

    @event("Revoked")
    def _revoked(self, attempt: int, reason: str | None, terminated: bool) -> None:
        self.status = TaskStatus.REVOKED

    def to_ledger_events(self) -> list[AnyEvent]:
        """The pending steps as ledger events, in order; then ``collect_events`` clears
        them (only once all translated: an invalid step loses nothing)."""
        events: list[AnyEvent] = []
        for recorded in self.pending_events:
            build = _TASK_EVENTS.get(type(recorded).__name__)
            if build is not None:  # "Opened" only names the run: no status changed
                events.append(build(**_common(self, recorded), **_fields(recorded)))
        self.collect_events()
        return events


_TASK_EVENTS: Final[Mapping[str, Callable[..., AnyEvent]]] = MappingProxyType(
    {
        "Enqueued": TaskPending,
        "Received": TaskReceived,
        "Started": TaskStarted,
        "Retried": TaskRetried,
        "Failed": TaskFailed,
        "Succeeded": TaskSucceeded,
        "Revoked": TaskRevoked,
    }
)
"""Aggregate event class name → the ledger event it becomes."""

_WITH_PAYLOAD: Final = frozenset({"Enqueued", "Received", "Started"})
"""Steps that repeat the call's args/kwargs; later steps rely on the fold's gap rule."""

_BOOKKEEPING: Final = frozenset({"originator_id", "originator_version", "timestamp"})


def _fields(recorded: Any) -> dict[str, Any]:
    return {k: v for k, v in recorded.__dict__.items() if k not in _BOOKKEEPING}


def _common(run: TaskRun, recorded: Any) -> dict[str, Any]:
    common: dict[str, Any] = {
        "event_id": _event_id(recorded),
        "occurred_at": recorded.timestamp,
        "task_id": run.task_id,
        "task_name": run.name,
    }
    if type(recorded).__name__ in _WITH_PAYLOAD:
        common.update(args=run.args, kwargs=run.kwargs)
    return common


class PeriodicTask(Aggregate):
    """A schedule entry: ``name`` runs ``task`` every ``interval_seconds`` until disabled."""

    @staticmethod
    def create_id(name: str) -> UUID:
        return uuid5(PERIODIC_NAMESPACE, name)

    @event("Registered")
    def __init__(self, name: str, task: str, interval_seconds: float) -> None:
        if interval_seconds <= 0:
            raise ValueError(f"interval_seconds: must be > 0, got {interval_seconds}")
        self.name = name
        self.task = task
        self.interval_seconds = interval_seconds
        self.enabled = True
        self.total_run_count = 0
        self.last_run_at: datetime | None = None

    def delay(self, task_id: str) -> None:
        """The seed's ``PeriodicTaskMeta.delay()``: one run was dispatched as ``task_id``."""
        if not self.enabled:
            raise InvalidTransition(f"periodic task {self.name!r} is disabled: cannot run it")
        self._triggered(task_id=task_id, at=datetime.now(UTC))

    def disable(self, reason: str | None = None) -> None:
        if not self.enabled:
            raise InvalidTransition(f"periodic task {self.name!r} is already disabled")
        self._unregistered(reason=reason)

    @event("Triggered")
    def _triggered(self, task_id: str, at: datetime) -> None:
        self.total_run_count += 1
        self.last_run_at = at

    @event("Unregistered")
    def _unregistered(self, reason: str | None) -> None:
        self.enabled = False

    def to_ledger_events(self) -> list[AnyEvent]:
        """The pending steps as ledger events, in order; then ``collect_events`` clears them."""
        events = [_periodic_event(self, recorded) for recorded in self.pending_events]
        self.collect_events()
        return events


def _periodic_event(periodic: PeriodicTask, recorded: Any) -> AnyEvent:
    event_id, name = _event_id(recorded), periodic.name
    kind = type(recorded).__name__
    if kind == "Registered":
        return PeriodicTaskRegistered(
            event_id=event_id,
            occurred_at=recorded.timestamp,
            name=name,
            task=recorded.task,
            interval_seconds=recorded.interval_seconds,
        )
    if kind == "Triggered":
        return PeriodicTaskTriggered(
            event_id=event_id,
            occurred_at=recorded.at,
            name=name,
            task_id=recorded.task_id,
            task=periodic.task,
        )
    if kind == "Unregistered":
        return PeriodicTaskUnregistered(
            event_id=event_id, occurred_at=recorded.timestamp, name=name, reason=recorded.reason
        )
    raise TypeError(f"no ledger event for periodic step {kind!r}")
