"""The ledger's events: immutable, versioned facts about tasks, periodic tasks, failure
groups and workers.

Pydantic models, because the same classes validate what arrives from the log (untrusted
bytes from any producer) and describe the wire contract (JSON Schema in ``ledger.wire``).
Each event names its own ``type`` (the discriminator) and carries ``version`` so a future
schema can be told apart rather than misread. Timestamps must be timezone-aware: a naive
time from one worker would be misordered against another's.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Annotated, ClassVar, Final, Literal, Self
from uuid import UUID, uuid4

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, model_validator

from ledger.domain.fields import Args, FreeText, Kwargs, Name, PeriodicName, TaskId, no_nul
from ledger.domain.statuses import TaskStatus

__all__ = [
    "LINKAGE_FIELDS",
    "SCHEMA_VERSION",
    "AnyEvent",
    "AnyPeriodicEvent",
    "AnyTaskEvent",
    "AnyWorkerEvent",
    "Emitter",
    "FailureGroupEvent",
    "FailureGroupReopened",
    "FailureGroupResolved",
    "LedgerEvent",
    "PeriodicTaskEvent",
    "PeriodicTaskRegistered",
    "PeriodicTaskTriggered",
    "PeriodicTaskUnregistered",
    "TaskEvent",
    "TaskExpired",
    "TaskFailed",
    "TaskPending",
    "TaskReceived",
    "TaskRetried",
    "TaskRevoked",
    "TaskStarted",
    "TaskSucceeded",
    "WorkerEvent",
    "WorkerHeartbeat",
    "WorkerOffline",
    "WorkerOnline",
    "event_key",
]


Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
ShortText = Annotated[str, Field(max_length=255), AfterValidator(no_nul)]
Load = Annotated[float, Field(ge=0, allow_inf_nan=False)]
_OMITTED: Final = Field(exclude_if=lambda value: value is None)


def utc_now() -> datetime:
    return datetime.now(UTC)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Emitter(_Frozen):
    """Who wrote the event: lets an operator trace a transition back to a process."""

    host: Name
    pid: Annotated[int, Field(ge=0)]
    worker: ShortText | None = None


_HOST: Final = socket.gethostname() or "unknown"
_here: dict[tuple[int, str | None], Emitter] = {}


def this_process(worker: str | None = None) -> Emitter:
    """The emitter for this host and pid: the pid is re-read on every call because a
    prefork pool forks after the SDK is built; the result is cached per (pid, worker)."""
    key = (os.getpid(), worker)
    emitter = _here.get(key)
    if emitter is None:
        emitter = _here[key] = Emitter(host=_HOST, pid=key[0], worker=worker)
    return emitter


SCHEMA_VERSION: Final = 2
"""The events' schema version. 2 added the optional linkage and routing of ``TaskEvent``
(``LINKAGE_FIELDS``); a version-1 record (without them) is still valid and reads as before."""


class _Event(_Frozen):
    version: Literal[1, 2] = SCHEMA_VERSION
    type: str
    event_id: UUID = Field(default_factory=uuid4)
    occurred_at: AwareDatetime = Field(default_factory=utc_now)
    emitter: Emitter = Field(default_factory=this_process)


class TaskEvent(_Event):
    """A task's status transition. ``attempt`` counts retries so far: it orders attempts."""

    status: ClassVar[TaskStatus | None]
    task_id: TaskId
    task_name: ShortText | None = None
    attempt: Annotated[int, Field(ge=0)] = 0
    args: Args = None
    kwargs: Kwargs = None
    truncated: dict[str, Annotated[int, Field(ge=0)]] | None = None
    """Fields cut to keep the event under the size limit (``limits.fit``): each field's name
    and its original size in bytes of JSON."""
    # -- since schema version 2: where the task stands in a workflow and how it was routed.
    # Any event may carry them (the publisher knows them, and so does the worker's request).
    # Left out of the JSON when unset, so a version-1 event re-encodes to its original bytes.
    root_id: Annotated[TaskId | None, _OMITTED] = None
    """The first task of the workflow (Celery's ``root_id`` header)."""
    parent_id: Annotated[TaskId | None, _OMITTED] = None
    """The task that sent this one (Celery's ``parent_id`` header; the SDK's current task)."""
    group_id: Annotated[TaskId | None, _OMITTED] = None
    """The group this task is a member of (Celery's ``group`` header)."""
    callback_id: Annotated[TaskId | None, _OMITTED] = None
    """The chord callback that runs once this task's group has finished (the id of the
    ``chord`` signature in a Celery message's embed)."""
    queue: Annotated[ShortText | None, _OMITTED] = None
    exchange: Annotated[ShortText | None, _OMITTED] = None
    routing_key: Annotated[ShortText | None, _OMITTED] = None
    expires: Annotated[AwareDatetime | None, _OMITTED] = None
    """When the message expires: a worker revokes it if not started by then."""
    reconciled_from: Annotated[ShortText | None, _OMITTED] = None
    """Not seen happen: read afterwards from this source (``celery result backend``) for a
    task whose events were lost, so the steps between the last one seen and this outcome
    are unknown (the timeline says so)."""


LINKAGE_FIELDS: Final = ("root_id", "parent_id", "group_id", "callback_id", "queue", "exchange",
                         "routing_key", "expires")  # fmt: skip
"""The task fields schema version 2 added: absent from older records."""


class TaskPending(TaskEvent):
    """Sent to the queue (``eta``: not to run before)."""

    status: ClassVar[TaskStatus | None] = TaskStatus.PENDING
    type: Literal["task.pending"] = "task.pending"
    eta: AwareDatetime | None = None


class TaskReceived(TaskEvent):
    """A worker took the message off the queue."""

    status: ClassVar[TaskStatus | None] = TaskStatus.RECEIVED
    type: Literal["task.received"] = "task.received"
    eta: AwareDatetime | None = None


class TaskStarted(TaskEvent):
    """A worker began executing the task."""

    status: ClassVar[TaskStatus | None] = TaskStatus.STARTED
    type: Literal["task.started"] = "task.started"


class TaskRetried(TaskEvent):
    """This attempt ended and another is scheduled; the next events carry ``attempt + 1``."""

    status: ClassVar[TaskStatus | None] = TaskStatus.RETRY
    type: Literal["task.retried"] = "task.retried"
    exc_type: ShortText | None = None
    exc_message: FreeText | None = None
    exc_args: list[JsonValue] | None = None
    traceback: FreeText | None = None
    eta: AwareDatetime | None = None
    """When the next attempt may run; given only a ``countdown``, ``occurred_at + countdown``."""
    countdown: Seconds | None = None

    @model_validator(mode="after")
    def _eta_from_countdown(self) -> Self:
        if self.eta is None and self.countdown is not None:
            self.__dict__["eta"] = self.occurred_at + timedelta(seconds=self.countdown)
        return self


class TaskFailed(TaskEvent):
    """The task raised and will not be retried."""

    status: ClassVar[TaskStatus | None] = TaskStatus.FAILURE
    type: Literal["task.failed"] = "task.failed"
    exc_type: Annotated[str, Field(min_length=1, max_length=255), AfterValidator(no_nul)]
    exc_message: FreeText | None = None
    exc_args: list[JsonValue] | None = None
    """The exception's ``args`` as JSON: what Celery's result backends store as ``exc_message``."""
    traceback: FreeText | None = None
    runtime: Seconds | None = None


class TaskSucceeded(TaskEvent):
    """The task returned ``result``."""

    status: ClassVar[TaskStatus | None] = TaskStatus.DONE
    type: Literal["task.succeeded"] = "task.succeeded"
    result: JsonValue = None
    runtime: Seconds | None = None


class TaskRevoked(TaskEvent):
    """Cancelled before or (``terminated``) while running."""

    status: ClassVar[TaskStatus | None] = TaskStatus.REVOKED
    type: Literal["task.revoked"] = "task.revoked"
    reason: FreeText | None = None
    terminated: bool = False


class TaskExpired(TaskEvent):
    """Remove this finished task from the views. An event, not a DELETE, so a replay of the
    log removes exactly what the live views removed. It changes no status."""

    status: ClassVar[TaskStatus | None] = None
    type: Literal["task.expired"] = "task.expired"
    expired_before: AwareDatetime


class PeriodicTaskEvent(_Event):
    """A change to a periodic task (a schedule entry), keyed by its ``name``."""

    name: PeriodicName


class PeriodicTaskRegistered(PeriodicTaskEvent):
    """``name`` runs ``task`` every ``interval_seconds`` (a newer registration replaces it)."""

    type: Literal["periodic.registered"] = "periodic.registered"
    task: Name
    interval_seconds: Annotated[float, Field(gt=0, allow_inf_nan=False)]


class PeriodicTaskTriggered(PeriodicTaskEvent):
    """The seed's ``PeriodicTaskMeta.delay()``: one run was dispatched as ``task_id``."""

    type: Literal["periodic.triggered"] = "periodic.triggered"
    task_id: TaskId
    task: ShortText | None = None
    scheduled_for: AwareDatetime | None = None


class PeriodicTaskUnregistered(PeriodicTaskEvent):
    """Disable ``name``: no more runs until it is registered again."""

    type: Literal["periodic.unregistered"] = "periodic.unregistered"
    reason: FreeText | None = None


class FailureGroupEvent(_Event):
    """An operator's decision on a failure group (``domain.failures``). An event, not a row
    update, so a rebuild keeps it. Keyed by the fingerprint: a group's decisions share a
    partition, in order."""

    fingerprint: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]


class FailureGroupResolved(FailureGroupEvent):
    """An operator marked a failure group resolved; a failure of the group that occurs
    after ``occurred_at`` reopens it. The latest resolution counts."""

    type: Literal["failures.resolved"] = "failures.resolved"
    resolved_by: ShortText | None = None
    note: FreeText | None = None


class FailureGroupReopened(FailureGroupEvent):
    """An operator reopened a resolved failure group (the fix did not hold, or it was
    resolved by mistake): open again without waiting for its next failure. A resolution
    after it resolves the group again; the latest of each counts."""

    type: Literal["failures.reopened"] = "failures.reopened"
    reopened_by: ShortText | None = None
    note: FreeText | None = None


class WorkerEvent(_Event):
    """A Celery worker's presence, as its own events report it (``worker-online``,
    ``worker-heartbeat``, ``worker-offline``): who it is, how often it beats, how loaded it
    is. Keyed by ``hostname`` (``celery@host``, what task events name as their worker), so
    one worker's events share a partition, in order. Every field but the hostname is
    optional: Celery sends them all, a hand-made event may not."""

    hostname: Name
    freq: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    """The heartbeat interval in seconds (Celery's default 2.0): 3 missed and the worker
    counts as offline (``domain.workers``)."""
    sw_ident: ShortText | None = None
    """The worker software (``py-celery``)."""
    sw_ver: ShortText | None = None
    sw_sys: ShortText | None = None
    """The worker's operating system (``Linux``)."""
    loadavg: tuple[Load, Load, Load] | None = None
    """The host's load average over 1, 5 and 15 minutes."""
    processed: Annotated[int, Field(ge=0)] | None = None
    """Tasks the worker has processed since it started."""
    active: Annotated[int, Field(ge=0)] | None = None
    """Tasks it is executing now."""


class WorkerOnline(WorkerEvent):
    """A worker started and joined the cluster."""

    type: Literal["worker.online"] = "worker.online"


class WorkerHeartbeat(WorkerEvent):
    """A worker is alive (sent every ``freq`` seconds)."""

    type: Literal["worker.heartbeat"] = "worker.heartbeat"


class WorkerOffline(WorkerEvent):
    """A worker shut down cleanly (a killed one just stops beating)."""

    type: Literal["worker.offline"] = "worker.offline"


AnyTaskEvent = Annotated[
    TaskPending
    | TaskReceived
    | TaskStarted
    | TaskRetried
    | TaskFailed
    | TaskSucceeded
    | TaskRevoked
    | TaskExpired,
    Field(discriminator="type"),
]
AnyPeriodicEvent = Annotated[
    PeriodicTaskRegistered | PeriodicTaskTriggered | PeriodicTaskUnregistered,
    Field(discriminator="type"),
]
AnyWorkerEvent = Annotated[WorkerOnline | WorkerHeartbeat | WorkerOffline, Field(discriminator="type")]
# Flat (not a union of the unions) so a validation error's location has one tag.
AnyEvent = Annotated[
    TaskPending
    | TaskReceived
    | TaskStarted
    | TaskRetried
    | TaskFailed
    | TaskSucceeded
    | TaskRevoked
    | TaskExpired
    | PeriodicTaskRegistered
    | PeriodicTaskTriggered
    | PeriodicTaskUnregistered
    | FailureGroupResolved
    | FailureGroupReopened
    | WorkerOnline
    | WorkerHeartbeat
    | WorkerOffline,
    Field(discriminator="type"),
]
LedgerEvent = TaskEvent | PeriodicTaskEvent | FailureGroupEvent | WorkerEvent
"""Any event the ledger appends (the base classes of ``AnyEvent``'s members)."""


def event_key(event: LedgerEvent) -> str:
    """The log key: one task's (or periodic task's, failure group's, worker's) events share
    a partition, in order."""
    if isinstance(event, TaskEvent):
        return event.task_id
    if isinstance(event, FailureGroupEvent):
        return event.fingerprint
    if isinstance(event, WorkerEvent):
        return event.hostname
    return event.name
