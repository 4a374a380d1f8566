"""The view ports: where projections keep ``task_meta``, ``task_event``,
``periodic_task_meta`` and their consumed offsets, split by who uses them.

``ViewWriter`` serves the projector and the rebuild: it writes one batch of changes and the
offsets that produced it in ONE transaction (invariant 2: exactly-once effect), the offset
write conditional on the offsets the batch started from, so a zombie projector's stale
batch is refused instead of overwriting newer rows; and it reads what the planner needs.
``ViewReader`` serves the queries (CLI, HTTP, Python), including time travel over the
stored history. Adapters: ``SqlViewReader`` (``reader.py``) and the writers of
``postgres.py`` and ``sqlite.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal, Self
from uuid import UUID

from ledger.collector import collector_paused
from ledger.domain.fold import TaskState
from ledger.domain.periodic import PeriodicState
from ledger.domain.search import Scalar, check_kwarg, check_runtimes, search_terms
from ledger.domain.series import Axis, SeriesFilter
from ledger.domain.statuses import TaskStatus
from ledger.domain.workers import WorkerState
from ledger.domain.workflow import Workflow, WorkflowNode, build_workflow
from ledger.projections.failure_types import Buckets, FailureFilter, GroupCounts, GroupDetail
from ledger.timeutil import require_aware


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One applied event of a task (or of a periodic task), with its log position."""

    event_id: UUID
    key: str
    type: str
    status: str | None
    attempt: int
    occurred_at: datetime
    partition: int
    offset: int
    payload: bytes
    """The event's JSON, so a late event can be refolded and timelines shown."""
    run_task_id: str | None = None
    """For a periodic trigger: the task id of the run it dispatched."""
    fingerprint: str | None = None
    """For a task's failure: its failure group (``domain.failures.fingerprint``)."""


@dataclass(frozen=True, slots=True)
class GroupDecision:
    """An operator's decision on a failure group: resolved (``failures.resolved``) or
    reopened (``failures.reopened``). The latest of each kind counts."""

    fingerprint: str
    kind: Literal["resolved", "reopened"]
    at: datetime
    by: str | None
    event_id: UUID


@dataclass(slots=True)
class Changes:
    """Everything one batch changes, written atomically with ``offsets``."""

    projection: str
    topic: str
    expected_offsets: dict[int, int]
    """The stored offsets this batch was read from: the write is refused if they moved."""
    offsets: dict[int, int]
    """The next offset to read per partition once this batch is committed."""
    tasks: list[TaskState] = field(default_factory=list)
    deleted_tasks: list[str] = field(default_factory=list)
    task_history: list[HistoryRow] = field(default_factory=list)
    periodic: list[PeriodicState] = field(default_factory=list)
    periodic_history: list[HistoryRow] = field(default_factory=list)
    decisions: list[GroupDecision] = field(default_factory=list)
    workers: list[WorkerState] = field(default_factory=list)
    """The batch's worker events merged per hostname (``domain.workers.merge``): one row each."""

    @property
    def event_count(self) -> int:
        return len(self.task_history) + len(self.periodic_history) + len(self.decisions)


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """What ``list_tasks`` selects; every field is optional and all of them must hold.
    ``since`` (inclusive) and ``until`` (exclusive) bound ``date_done``: when the status
    last changed. The search fields follow ``domain.search``'s rules: ``text`` is free
    text (every term a substring of the task's document, case-folded), ``kwargs`` are
    (key, JSON scalar) pairs the task's kwargs must hold, ``runtime_above``/``below`` are
    strict bounds in seconds, ``retried`` keeps the tasks that retried at least once.
    A value breaking a rule raises ValueError naming the field."""

    statuses: tuple[TaskStatus, ...] = ()
    name: str | None = None
    worker: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    kwargs: tuple[tuple[str, Scalar], ...] = ()
    queue: str | None = None
    root_id: str | None = None
    parent_id: str | None = None
    runtime_above: float | None = None
    runtime_below: float | None = None
    retried: bool = False

    def __post_init__(self) -> None:
        if self.text is not None:
            search_terms(self.text, "text")
        for pair in self.kwargs:
            check_kwarg(*pair, "kwargs")
        check_runtimes(self.runtime_above, self.runtime_below, ("runtime_above", "runtime_below"))

    @property
    def terms(self) -> tuple[str, ...]:
        """The free-text terms, case-folded (none without ``text``)."""
        return () if self.text is None else search_terms(self.text, "text")


class TaskOrder(StrEnum):
    """The orders a task listing comes in: the ones an index serves (``schema``), each by
    one instant of the task, ties broken by task id in the same direction. The value is
    what ``sort=`` / ``--sort`` take: the key, ``-`` first for newest first.

    ``first_seen`` (when the ledger first saw the task) never changes, so a walk in it
    returns every task exactly once. ``changed`` (``date_done``, when the status last
    changed) moves when a task changes: a walk returns each task that does not change
    during it exactly once; one that changes moves to its new place (newest first: ahead
    of the walk, like a new task; oldest first: the walk may reach it again)."""

    NEWEST = "-first_seen"
    OLDEST = "first_seen"
    CHANGED_NEWEST = "-changed"
    CHANGED_OLDEST = "changed"

    @property
    def key(self) -> str:
        """The ``task_meta`` column ordered by."""
        return "date_done" if self.value.endswith("changed") else "first_seen"

    @property
    def descending(self) -> bool:
        """Newest first: what a live view refreshes (new and changed tasks come on top)."""
        return self.value.startswith("-")

    def key_of(self, state: TaskState) -> datetime:
        return state.date_done if self.key == "date_done" else state.first_seen

    @classmethod
    def parse(cls, text: str, field: str = "sort") -> TaskOrder:
        """An order as a user types it; anything else raises ValueError naming ``field``."""
        try:
            return cls(text.strip())
        except ValueError:
            choices = ", ".join(order.value for order in cls)
            raise ValueError(f"{field}: expected one of {choices}, got {text!r}") from None


DEFAULT_ORDER = TaskOrder.NEWEST


@dataclass(frozen=True, slots=True)
class Cursor:
    """Keyset position in ``order``: rows strictly after (``at``, task_id), ``at`` being
    the order's key (``TaskOrder.key_of``)."""

    at: datetime
    task_id: str
    order: TaskOrder = DEFAULT_ORDER


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """One dispatched run of a periodic task."""

    triggered_at: datetime
    task_id: str | None
    status: TaskStatus | None
    date_done: datetime | None


@dataclass(frozen=True, slots=True)
class InFlight:
    """Tasks in flight at an instant (``ViewReader.in_flight_as_of``): the first few, and
    how many there were in all."""

    tasks: list[tuple[str, str | None, TaskStatus]]
    """(task id, name, status then), by task id."""
    total: int


@dataclass(frozen=True, slots=True)
class WorkerTasks:
    """The tasks ``task_meta`` records as run by one worker: how many are in each status
    now, and the newest few (by first seen)."""

    counts: dict[TaskStatus, int]
    newest: list[str]


@dataclass(frozen=True, slots=True)
class SeriesRows:
    """(bucket, status, count) rows, and (bucket, p50, p95, p99) of runtimes and queue waits."""

    counts: list[tuple[int, str, int]]
    runtimes: list[tuple[int, float | None, float | None, float | None]]
    waits: list[tuple[int, float | None, float | None, float | None]]


class StaleOffsets(RuntimeError):
    """The stored offsets moved since the batch was read: another projector owns them now."""


class ViewStoreUnavailable(RuntimeError):
    """The store cannot be reached; the message names what was tried."""


class ViewsNotCreated(ViewStoreUnavailable):
    """The views were never created where the store looked (no file, schema or tables):
    readers say so, and what to run, instead of reading empty views or creating them."""

    def __init__(self, where: str) -> None:
        super().__init__(
            f"no ledger views in {where} yet: run `ledger migrate` (or `ledger project`, which creates them)"
        )



class StoredOffsets(ABC):
    """Where the views record how far they have read the log (both ports read it)."""

    @abstractmethod
    def offsets(self, projection: str, topic: str) -> dict[int, int]:
        """The next offset to read per partition; partitions never written are absent."""

    @abstractmethod
    def close(self) -> None:
        """Release connections. Idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ViewWriter(StoredOffsets):
    """The projector's side. ``migrate`` is safe to call twice, and from several processes."""

    @abstractmethod
    def migrate(self, target: str = "head") -> list[str]:
        """Create or upgrade the views to the migration ``target`` (default: the latest);
        return the names of the migrations applied, in order."""

    @abstractmethod
    def write(self, changes: Changes) -> None:
        """Apply ``changes`` and store ``changes.offsets`` in one transaction.

        Raises ``StaleOffsets`` (and writes nothing) if any partition's stored offset is not
        ``changes.expected_offsets[partition]`` (absent counts as 0)."""

    @abstractmethod
    def load_tasks(self, task_ids: Iterable[str]) -> dict[str, TaskState]:
        """Current rows of these tasks (missing ids are absent)."""

    @abstractmethod
    def load_periodic(self, names: Iterable[str]) -> dict[str, PeriodicState]:
        """Current periodic rows of these names."""

    @abstractmethod
    def known_event_ids(self, event_ids: Iterable[UUID]) -> set[UUID]:
        """Which of these events are already in a history table (duplicate appends)."""

    @abstractmethod
    def task_history(self, task_ids: Iterable[str]) -> list[HistoryRow]:
        """History rows of these tasks, in log order (partition, offset)."""

    @abstractmethod
    def drop(self) -> None:
        """Remove these views entirely (a demo's or a discarded rebuild's)."""

    @abstractmethod
    def table_rows(self, table: str) -> tuple[list[str], Iterator[tuple[object, ...]]]:
        """A table's column names and its rows, streamed, ordered by primary key compared
        as text byte by byte (as Python compares ``str``): what a rebuild's verify
        merge-joins. ``table`` is one of ``schema.PRIMARY_KEYS``."""

    def reading_together(self) -> AbstractContextManager[None]:
        """Around the reads of one batch's plan: a backend may serve them on one connection
        and one read transaction instead of one each (each read costs a round trip to
        begin and one to end it: at a steady 1,000 events/s, batches of ~20 events, that
        was most of a batch's planning time). Default: nothing to do."""
        return nullcontext()

    def bulk_loading(self) -> AbstractContextManager[None]:
        """Around a load into fresh views (a rebuild's first pass): a backend may drop the
        indexes the planner does not read and build each once at the end, one sort instead
        of an insert per row; on leaving, the views are as ``migrate`` made them. If the
        load fails the views are to be discarded. Default: nothing to do."""
        return nullcontext()


class ViewReader(StoredOffsets):
    """The queries' side: reads only, never creates anything (views never created raise
    ``ViewsNotCreated``). The time-travel reads check their arguments, then delegate to
    their ``_`` method."""

    @abstractmethod
    def task_state(self, task_id: str) -> TaskState | None:
        """The current row of one task; None for an id the views do not hold."""

    @abstractmethod
    def list_tasks(self, where: TaskFilter, *, after: Cursor | None, limit: int,
                   order: TaskOrder = DEFAULT_ORDER) -> list[TaskState]:  # fmt: skip
        """Rows matching ``where`` in ``order`` (ties by ``task_id`` in the same direction),
        strictly after ``after`` (a cursor of that order): in the ``first_seen`` orders a walk
        over pages returns each task at most once, and every task present when it began and
        still matching when reached exactly once (the ``changed`` orders: ``TaskOrder``)."""

    @abstractmethod
    def slowest_tasks(self, limit: int) -> list[TaskState]:
        """Finished tasks with the longest runtime first (then by task id)."""

    @abstractmethod
    def status_counts(self) -> dict[TaskStatus, int]:
        """How many tasks are in each status now; statuses no task has are absent."""

    @abstractmethod
    def periodic_tasks(self) -> list[PeriodicState]:
        """Every periodic task, by name."""

    @abstractmethod
    def periodic_runs(self) -> dict[str, list[RunOutcome]]:
        """Per periodic task, every triggered run in trigger-time order, with the run's
        current status and date_done where the run's task is in ``task_meta``."""

    @abstractmethod
    def finished_before(self, before: datetime, limit: int) -> list[str]:
        """Ids of finished tasks whose ``date_done`` is before ``before``, oldest first."""

    def workflow(self, task_id: str) -> Workflow | None:
        """The workflow ``task_id`` belongs to, or roots (``domain.workflow``): every task
        that shares a root or a group with it, transitively (a group of chains, a chord's
        callback); None when the views hold none of them."""
        with collector_paused():  # 10,000 tasks: ~40,000 objects, none in a cycle
            return build_workflow(self._workflow_nodes(task_id))

    @abstractmethod
    def failure_counts(self, where: FailureFilter, limit: int) -> list[GroupCounts]:
        """The failure groups of the failures ``where`` selects, at most ``limit``, the
        most recently failing first (then by fingerprint), each with its resolution."""

    @abstractmethod
    def failure_details(self, where: FailureFilter, fingerprints: Collection[str], *, examples: int,
                        buckets: Buckets) -> dict[str, GroupDetail]:  # fmt: skip
        """For each of ``fingerprints`` with a failure ``where`` selects: the newest failure's
        JSON, the task ids of its newest ``examples`` failures (distinct, newest first) and its
        failures per bucket of ``buckets`` (``buckets.count`` numbers)."""

    @abstractmethod
    def series_rows(self, where: SeriesFilter, axis: Axis) -> SeriesRows:
        """What a series of ``axis`` is made of, for the tasks ``where`` selects: the counted
        transitions per (bucket, status), and the nearest-rank percentiles
        (``domain.series.PERCENTILES``) of runtimes and queue waits per bucket."""

    @abstractmethod
    def workers(self, *, hostname: str | None = None, limit: int) -> list[WorkerState]:
        """Worker rows by hostname, at most ``limit`` (only ``hostname``'s when given)."""

    @abstractmethod
    def worker_tasks(self, hostname: str, *, newest: int) -> WorkerTasks:
        """The tasks whose worker is ``hostname``: counts per status (one grouped query
        over that worker's index range) and the ``newest`` latest first seen."""

    def task_events(self, task_id: str, *, until: datetime | None = None) -> list[HistoryRow]:
        """The task's history rows in log order (partition, offset); with ``until``, only
        events that occurred at or before it."""
        return self._task_events(task_id, None if until is None else require_aware(until, "until"))

    def status_counts_as_of(self, at: datetime) -> dict[TaskStatus, int]:
        """How many tasks were in each status at ``at``: per task, the status of its
        top-ranked event (``fold.rank``) among those with ``occurred_at <= at``. Tasks with
        no event by then are not counted; statuses no task had are absent."""
        return self._status_counts_as_of(require_aware(at, "at"))

    def in_flight_as_of(self, at: datetime, *, limit: int) -> InFlight:
        """The tasks whose status at ``at`` (the rule of ``status_counts_as_of``) was one of
        ``IN_FLIGHT_STATES``: the first ``limit`` by task id, and their total."""
        if limit < 1:
            raise ValueError(f"limit: must be at least 1, got {limit}")
        return self._in_flight_as_of(require_aware(at, "at"), limit)

    @abstractmethod
    def _workflow_nodes(self, task_id: str) -> list[WorkflowNode]:
        """``workflow``'s tasks as nodes, computed in the database with ONE query (the
        closure over roots and groups; only the final rows cross the wire)."""

    @abstractmethod
    def _task_events(self, task_id: str, until: datetime | None) -> list[HistoryRow]:
        """``task_events`` with a checked ``until``: one query."""

    @abstractmethod
    def _status_counts_as_of(self, at: datetime) -> dict[TaskStatus, int]:
        """``status_counts_as_of`` computed in the database with ONE query (a million
        events must not cross the wire)."""

    @abstractmethod
    def _in_flight_as_of(self, at: datetime, limit: int) -> InFlight:
        """``in_flight_as_of`` with checked arguments: ONE query."""
