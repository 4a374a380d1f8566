"""The HTTP API's response models: the wire contract other services read, and what the
OpenAPI document shows. Built from the domain's dataclasses in one place each
(``from_state`` …), so a route never assembles JSON by hand."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ledger.domain.events import Emitter
from ledger.domain.fields import FreeText
from ledger.domain.fold import TaskState
from ledger.domain.statuses import TaskStatus, every_status
from ledger.projections.failures import FailureGroup
from ledger.projections.queries import PeriodicTaskMeta
from ledger.projections.timeline import Timeline, TimelineEntry
from ledger.projections.workers import Worker, WorkerDetail

__all__ = [
    "ComponentOut",
    "ErrorOut",
    "FailureGroupOut",
    "GapOut",
    "HealthOut",
    "HistoryEntryOut",
    "PageOut",
    "PeriodicOut",
    "ReopeningIn",
    "ReopeningOut",
    "ResolutionIn",
    "ResolutionOut",
    "StatsOut",
    "TaskOut",
    "TimelineOut",
    "WorkerDetailOut",
    "WorkerOut",
]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ErrorOut(_Out):
    """Every error but 422 (whose body is FastAPI's list of ``{loc, msg, type}``)."""

    detail: str


class TaskOut(_Out):
    """One ``task_meta`` row. ``known`` is False only for ``pending_if_unknown``: an id the
    ledger never saw, reported PENDING as Celery's result backend did."""

    task_id: str
    known: bool = True
    name: str | None = None
    status: TaskStatus
    retries: int = 0
    result: JsonValue = None
    exc_type: str | None = None
    exc_message: str | None = None
    exc_args: list[JsonValue] | None = Field(None, description="the exception's args (Celery's exc_message)")
    traceback: str | None = None
    args: list[JsonValue] | None = None
    kwargs: dict[str, JsonValue] | None = None
    worker: str | None = None
    eta: datetime | None = None
    date_pending: datetime | None = None
    date_received: datetime | None = None
    date_started: datetime | None = None
    date_done: datetime | None = Field(None, description="when the status last changed")
    first_seen: datetime | None = Field(
        None, description="occurred_at of the task's first event in the log; never changes, and lists are ordered by it"
    )
    runtime: float | None = None
    last_event_id: UUID | None = None
    root_id: str | None = Field(None, description="the workflow's first task (Celery: the root of the canvas)")
    parent_id: str | None = Field(None, description="the task that sent this one")
    group_id: str | None = Field(None, description="the group this task belongs to")
    callback_id: str | None = Field(None, description="the chord callback this task's group feeds")
    queue: str | None = None
    exchange: str | None = None
    routing_key: str | None = None
    expires: datetime | None = None
    queue_wait: float | None = Field(None, description="seconds from publish to receipt")
    start_delay: float | None = Field(None, description="seconds from receipt to start")
    total_time: float | None = Field(None, description="seconds from publish to the finish, once finished")

    @classmethod
    def from_state(cls, state: TaskState) -> TaskOut:
        fields = {name: getattr(state, name) for name in cls.model_fields if name not in ("known",)}
        return cls(**fields)

    @classmethod
    def unknown(cls, task_id: str) -> TaskOut:
        return cls(task_id=task_id, known=False, status=TaskStatus.PENDING)


class PageOut(_Out):
    """A keyset page in the order asked for (``sort``); pass ``next_cursor`` back as ``cursor``
    with the same ``sort``. Following the cursors returns every task that existed when the
    walk began exactly once, whatever changes meanwhile (in a ``changed`` order, a task that
    changes moves)."""

    items: list[TaskOut]
    next_cursor: str | None


class GapOut(_Out):
    kind: str
    attempt: int
    message: str


class HistoryEntryOut(_Out):
    """One event of a task and what it did to the status when the projector applied it."""

    position: str = Field(description="partition:offset in the log")
    partition: int
    offset: int
    event_id: UUID
    occurred_at: datetime
    type: str
    attempt: int
    emitter: Emitter
    status: TaskStatus | None
    status_before: TaskStatus | None
    status_after: TaskStatus
    late: bool = Field(description="ranked below the state it arrived at, so it changed nothing")
    reconciled_from: str | None = Field(None, description="not seen happen: read afterwards from this source")

    @classmethod
    def from_entry(cls, entry: TimelineEntry) -> HistoryEntryOut:
        where = entry.position
        return cls(
            position=f"{where.partition}:{where.offset}",
            partition=where.partition,
            offset=where.offset,
            event_id=entry.event_id,
            occurred_at=entry.occurred_at,
            type=entry.type,
            attempt=entry.attempt,
            emitter=entry.emitter,
            status=entry.status,
            status_before=entry.status_before,
            status_after=entry.status_after,
            late=entry.late,
            reconciled_from=entry.reconciled_from,
        )


class TimelineOut(_Out):
    task_id: str
    in_progress: bool
    entries: list[HistoryEntryOut]
    gaps: list[GapOut]

    @classmethod
    def from_timeline(cls, timeline: Timeline) -> TimelineOut:
        return cls(
            task_id=timeline.task_id,
            in_progress=timeline.in_progress,
            entries=[HistoryEntryOut.from_entry(e) for e in timeline.entries],
            gaps=[GapOut(kind=g.kind.value, attempt=g.attempt, message=g.message) for g in timeline.gaps],
        )


class StatsOut(_Out):
    """Tasks per status (every status present, 0 when none), now or ``as_of`` a time."""

    as_of: datetime | None
    counts: dict[TaskStatus, int]
    total: int

    @classmethod
    def from_counts(cls, counts: dict[TaskStatus, int], as_of: datetime | None) -> StatsOut:
        full = every_status(counts)
        return cls(as_of=as_of, counts=full, total=sum(full.values()))


class PeriodicOut(_Out):
    """One ``periodic_task_meta`` row plus the run outcomes the query API derives."""

    name: str
    task: str | None
    interval_seconds: float | None
    enabled: bool
    last_run_at: datetime | None
    total_run_count: int
    last_run_task_id: str | None
    last_run_status: TaskStatus | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    missed_runs: int
    duplicate_firings: int
    next_run_at: datetime | None
    due: bool

    @classmethod
    def from_meta(cls, meta: PeriodicTaskMeta) -> PeriodicOut:
        state = meta.state
        return cls(
            name=state.name,
            task=state.task,
            interval_seconds=state.interval_seconds,
            enabled=state.enabled,
            last_run_at=state.last_run_at,
            total_run_count=state.total_run_count,
            last_run_task_id=state.last_run_task_id,
            last_run_status=meta.last_run_status,
            last_success_at=meta.last_success_at,
            last_failure_at=meta.last_failure_at,
            missed_runs=meta.missed_runs,
            duplicate_firings=meta.duplicate_firings,
            next_run_at=meta.next_run_at,
            due=meta.due,
        )


class ComponentOut(_Out):
    name: Literal["event_log", "views"]
    ok: bool
    target: str = Field(description="what was checked (never a password)")
    error: str | None = None


class HealthOut(_Out):
    """200 when every component answers, 503 otherwise (``failing`` names them)."""

    status: Literal["ok", "unavailable"]
    backend: str
    components: list[ComponentOut]
    failing: list[str]
    lag: dict[int, int] | None = Field(None, description="per partition: events appended, not yet projected")
    lag_total: int | None = None


class FailureGroupOut(_Out):
    """One failure group (``FailureQueries``): failures sharing a fingerprint in the window."""

    fingerprint: str
    task_name: str | None
    exc_type: str
    message: str = Field(description="the newest failure's message, masked as the fingerprint sees it")
    count: int
    tasks: int = Field(description="distinct task ids affected")
    first_seen: datetime
    last_seen: datetime
    status: Literal["open", "resolved"]
    resolved_at: datetime | None = Field(description="the latest resolution, kept when the group reopened")
    resolved_by: str | None
    reopened_at: datetime | None = Field(description="the latest reopen by an operator")
    reopened_by: str | None
    examples: list[str] = Field(description="the newest failures' task ids")
    trend: list[int] = Field(description="failures per bucket, oldest first")
    trend_start: datetime
    bucket_seconds: float

    @classmethod
    def from_group(cls, group: FailureGroup) -> FailureGroupOut:
        return cls.model_validate(group, from_attributes=True)


class ResolutionIn(_Out):
    """Who resolved a failure group, and why (both optional)."""

    resolved_by: str | None = Field(None, min_length=1, max_length=255)
    note: FreeText | None = None


class ResolutionOut(_Out):
    """The resolution appended to the log (the views show it once projected)."""

    fingerprint: str
    resolved_at: datetime
    resolved_by: str | None


class ReopeningIn(_Out):
    """Who reopened a failure group, and why (both optional)."""

    reopened_by: str | None = Field(None, min_length=1, max_length=255)
    note: FreeText | None = None


class ReopeningOut(_Out):
    """The reopen appended to the log (the views show it once projected)."""

    fingerprint: str
    reopened_at: datetime
    reopened_by: str | None


class WorkerOut(_Out):
    """One Celery worker (``WorkerQueries``), online or offline at ``checked_at``."""

    hostname: str
    status: Literal["online", "offline"] = Field(
        description="offline after a worker-offline event, or 3 heartbeat intervals after its last heartbeat")
    checked_at: datetime = Field(description="the server's time the status holds at")
    first_seen: datetime
    last_seen: datetime = Field(description="its latest event of any kind")
    last_heartbeat: datetime | None = Field(description="its latest worker-online or worker-heartbeat")
    offline_at: datetime | None = Field(description="when it said it went offline, unless it came back since")
    silent_since: datetime | None = Field(description="offline by missed heartbeats: when the last one was due")
    freq: float | None = Field(description="its heartbeat interval in seconds (none given: Celery's 2.0)")
    software: str = Field(description="sw_ident sw_ver (sw_sys), as much as the worker said")
    sw_ident: str | None
    sw_ver: str | None
    sw_sys: str | None
    loadavg: list[float] | None = Field(description="the host's load average over 1, 5 and 15 minutes")
    processed: int | None = Field(description="tasks it processed since it started (its own count)")
    active: int | None = Field(description="tasks it is running now")
    pid: int

    @classmethod
    def from_worker(cls, worker: Worker) -> WorkerOut:
        return cls.model_validate(worker, from_attributes=True)


class WorkerDetailOut(WorkerOut):
    """One worker and the tasks the views record as run by it."""

    tasks: dict[TaskStatus, int] = Field(description="its tasks in each status now")
    newest_tasks: list[str] = Field(description="its newest task ids, by first seen")

    @classmethod
    def from_detail(cls, worker: WorkerDetail) -> WorkerDetailOut:
        return cls.model_validate(worker, from_attributes=True)
