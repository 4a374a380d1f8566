"""The emit side's rules, as ``eventsourcing`` aggregates: what a task run and a periodic
task may do next, checked before anything reaches the log, and the id of each event.

A process keeps the runs it records (``ledger.sdk`` holds them, bounded): a step the run's
recorded state does not allow (succeed twice, retry a finished task, start after a
revoke) is refused with ``InvalidTransition`` naming both states. What a process has not
recorded itself it cannot judge: the first step it records of a run may be any step (the
ones before happened in another process: a publisher, the worker's main process). Within
an attempt a run only moves forward, by the domain's precedence table; a RETRY ends its
attempt and the steps after it belong to the next one; an outcome (FAILURE, DONE,
REVOKED) ends the run.

Each recorded step is one aggregate event; the ledger event appended for it takes its id
from the step (task id, status, attempt), so the same transition recorded twice — a
re-sent append, or the SDK and an ingester of Celery's own events — is held once. The
projector does not use these: it folds plain data (``fold.py``), far cheaper per event.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from hashlib import sha1
from types import MappingProxyType
from typing import Final, NamedTuple
from uuid import UUID, SafeUUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.domain.events import (
    AnyPeriodicEvent,
    Emitter,
    PeriodicTaskRegistered,
    PeriodicTaskTriggered,
    PeriodicTaskUnregistered,
)
from ledger.domain.statuses import PRECEDENCE, READY_STATES, TaskStatus

__all__ = [
    "TRANSITIONS",
    "InvalidTransition",
    "PeriodicTask",
    "Step",
    "TaskRun",
    "may_follow",
    "step_event_id",
    "trigger_event_id",
]

TASK_NAMESPACE: Final = UUID("6f0f3c6e-2f3b-5d1e-9a55-4c1c8e6b7a01")
PERIODIC_NAMESPACE: Final = UUID("0b7d2e59-8f41-5c3a-b1f2-93d5e7a4c602")
_TASK_NAMESPACE_BYTES: Final = TASK_NAMESPACE.bytes
_V5_CLEAR: Final = ~((0xC000 << 48) | (0xF000 << 64))  # uuid.UUID's variant and version bits
_V5_SET: Final = (0x8000 << 48) | (5 << 76)
_OUTCOME: Final = max(PRECEDENCE.values())


class InvalidTransition(ValueError):
    """A step the recorded state does not allow; the message names both states."""


def may_follow(current: TaskStatus | None, target: TaskStatus) -> bool:
    """Within one attempt: anything first, then only forward (PENDING < RECEIVED < STARTED
    < an outcome), and nothing after an outcome (RETRY included: it ends the attempt)."""
    if current is None:
        return True
    return PRECEDENCE[current] < _OUTCOME and PRECEDENCE[target] > PRECEDENCE[current]


TRANSITIONS: Final[Mapping[TaskStatus | None, frozenset[TaskStatus]]] = MappingProxyType(
    {current: frozenset(t for t in TaskStatus if may_follow(current, t)) for current in (None, *TaskStatus)}
)
"""``may_follow`` as a table: status within an attempt (None: nothing yet) → next ones."""


def step_event_id(task_id: str, status: TaskStatus, attempt: int) -> UUID:
    """The id of the event recording ``status`` at ``attempt`` of ``task_id``: ``uuid5`` in
    the task namespace of the parts joined with NUL, which no id may contain
    (``fields.no_nul``), so no two steps share a name. (``uuid5`` spelt out: it runs for
    every step recorded, and the namespace's bytes are computed once.)"""
    digest = sha1(_TASK_NAMESPACE_BYTES + f"{task_id}\x00{status}\x00{attempt}".encode(), usedforsecurity=False)
    return _uuid5_of(digest.digest())


def _uuid5_of(digest: bytes) -> UUID:
    """``UUID(bytes=digest[:16], version=5)`` without the constructor's checks of its
    arguments, which cost twice the hash (Python 3.14's ``UUID._from_int`` does the same)."""
    made = object.__new__(UUID)
    object.__setattr__(made, "int", int.from_bytes(digest[:16]) & _V5_CLEAR | _V5_SET)
    object.__setattr__(made, "is_safe", SafeUUID.unknown)
    return made


def trigger_event_id(name: str, task_id: str) -> UUID:
    """The id of the event recording that periodic task ``name`` dispatched ``task_id``."""
    return uuid5(PERIODIC_NAMESPACE, f"{name}\x00triggered\x00{task_id}")


class Step(NamedTuple):
    """A step a run allows: its status, the attempt it belongs to and its event's id."""

    status: TaskStatus
    attempt: int
    event_id: UUID


class TaskRun(Aggregate):
    """What this process has recorded of one task id."""

    class Stepped(Aggregate.Event):
        status: TaskStatus
        attempt: int

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, TaskRun)
            aggregate._moved(self.status, self.attempt)

    # The aggregate's own id is eventsourcing's default (uuid4): runs are never stored, and
    # deriving it from the task id would double the cost of opening one.

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.attempt = 0
        """The attempt the next step belongs to unless told otherwise."""
        self.statuses: dict[int, TaskStatus] = {}
        """The furthest status recorded in each attempt."""
        self.finished: tuple[TaskStatus, int] | None = None

    def plan(self, status: TaskStatus, attempt: int | None = None) -> Step:
        """The step ``status`` (at ``attempt``, else the current one) if the recorded state
        allows it; ``InvalidTransition`` naming both states if not. Changes nothing."""
        at = self.attempt if attempt is None else attempt
        if self.finished is not None:
            done, when = self.finished
            raise InvalidTransition(
                f"task {self.task_id!r} is finished ({done.value} at attempt {when}): cannot record {status.value}"
            )
        current = self.statuses.get(at)
        if not may_follow(current, status):
            allowed = ", ".join(sorted(TRANSITIONS[current])) or f"none: attempt {at} is over"
            raise InvalidTransition(
                f"task {self.task_id!r}: cannot go from {current.value if current else 'nothing'} to {status.value} "
                f"at attempt {at} (allowed: {allowed})"
            )
        return Step(status, at, step_event_id(self.task_id, status, at))

    def take(self, step: Step, at: datetime | None = None) -> None:
        """Record ``step`` (one the run planned) as taken ``at`` (default now: the ledger
        event's ``occurred_at``). The aggregate events are not kept: the ledger event
        appended for the step is the record."""
        self.trigger_event(self.Stepped, status=step.status, attempt=step.attempt, timestamp=at)
        self.collect_events()

    def _moved(self, status: TaskStatus, attempt: int) -> None:
        self.statuses[attempt] = status
        self.attempt = max(self.attempt, attempt + 1 if status is TaskStatus.RETRY else attempt)
        if status in READY_STATES:
            self.finished = (status, attempt)


class PeriodicTask(Aggregate):
    """A schedule entry as this process has recorded it: ``enabled`` is None until this
    process registers or disables it (another process may have)."""

    class Registered(Aggregate.Event):
        task: str
        interval_seconds: float

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, PeriodicTask)
            aggregate.task, aggregate.interval_seconds, aggregate.enabled = self.task, self.interval_seconds, True

    class Triggered(Aggregate.Event):
        task_id: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, PeriodicTask)
            aggregate.total_run_count += 1
            aggregate.last_run_at = self.timestamp

    class Unregistered(Aggregate.Event):
        reason: str | None

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, PeriodicTask)
            aggregate.enabled = False

    @staticmethod
    def create_id(name: str) -> UUID:
        return uuid5(PERIODIC_NAMESPACE, name)

    def __init__(self, name: str) -> None:
        self.name = name
        self.task: str | None = None
        self.interval_seconds: float | None = None
        self.enabled: bool | None = None
        self.total_run_count = 0
        self.last_run_at: datetime | None = None

    def register(self, task: str, interval_seconds: float) -> None:
        """``name`` runs ``task`` every ``interval_seconds`` (again, if it was disabled)."""
        if not interval_seconds > 0:
            raise ValueError(f"interval_seconds: must be > 0, got {interval_seconds}")
        self.trigger_event(self.Registered, task=task, interval_seconds=interval_seconds)

    def check_delay(self) -> None:
        """Refuse a run of a disabled entry before it is dispatched."""
        if self.enabled is False:
            raise InvalidTransition(f"periodic task {self.name!r} is disabled: cannot run it")

    def delay(self, task_id: str) -> None:
        """The seed's ``PeriodicTaskMeta.delay()``: one run was dispatched as ``task_id``."""
        self.check_delay()
        self.trigger_event(self.Triggered, task_id=task_id)

    def disable(self, reason: str | None = None) -> None:
        if self.enabled is False:
            raise InvalidTransition(f"periodic task {self.name!r} is already disabled")
        self.trigger_event(self.Unregistered, reason=reason)

    def to_ledger_events(self, emitter: Emitter | None = None) -> list[AnyPeriodicEvent]:
        """The steps not yet translated, as ledger events in order (written by ``emitter``,
        else this process); then they are cleared. A run's event id comes from the
        dispatched task id (the same run recorded twice is one run); a (re)registration's
        from the step, its version and time."""
        written = {"emitter": emitter} if emitter is not None else {}
        events = [self._ledger_event(recorded, written) for recorded in self.pending_events]
        self.collect_events()
        return [event for event in events if event is not None]

    def _ledger_event(self, recorded: object, written: dict[str, Emitter]) -> AnyPeriodicEvent | None:
        assert isinstance(recorded, Aggregate.Event)
        step_id = uuid5(self.id, f"{recorded.originator_version}:{type(recorded).__name__}:{recorded.timestamp}")
        common = {"name": self.name, "occurred_at": recorded.timestamp, **written}
        if isinstance(recorded, PeriodicTask.Registered):
            return PeriodicTaskRegistered(event_id=step_id, task=recorded.task,
                                          interval_seconds=recorded.interval_seconds, **common)  # fmt: skip
        if isinstance(recorded, PeriodicTask.Triggered):
            return PeriodicTaskTriggered(event_id=trigger_event_id(self.name, recorded.task_id),
                                         task_id=recorded.task_id, task=self.task, **common)  # fmt: skip
        if isinstance(recorded, PeriodicTask.Unregistered):
            return PeriodicTaskUnregistered(event_id=step_id, reason=recorded.reason, **common)
        return None  # the aggregate's creation only names it
