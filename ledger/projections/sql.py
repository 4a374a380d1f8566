"""One copy of the views as SQLAlchemy reaches it (``Database``), and the mapping between
their rows and the domain's states.

The reader and the writers build every query once, from ``schema``; a backend module
(``postgres.py``, ``sqlite.py``) subclasses ``Database`` with only how to connect and what
its dialect does differently: how a large set of keys is matched, which errors mean "not
reachable" or "never created", and the as-of query's fast form.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields, replace
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Select,
    Subquery,
    Table,
    case,
    cast,
    func,
    literal,
    select,
)
from sqlalchemy.exc import DBAPIError

from ledger.domain.fold import TaskState
from ledger.domain.periodic import PeriodicState
from ledger.domain.search import Scalar
from ledger.domain.statuses import PRECEDENCE
from ledger.domain.workers import WorkerState
from ledger.domain.workflow import NODE_FIELDS
from ledger.projections.schema import periodic_task_meta, task_event, task_meta, worker_meta
from ledger.projections.store import HistoryRow

__all__ = [
    "HISTORY_COLUMNS",
    "NODE_COLUMNS",
    "PERIODIC_COLUMNS",
    "TASK_COLUMNS",
    "WORKER_COLUMNS",
    "Database",
    "history_row",
    "precedence",
    "worker_state",
]


def _in_field_order(table: Table, names: Sequence[str]) -> tuple[Column[Any], ...]:
    return tuple(table.c[name] for name in names)


TASK_COLUMNS = _in_field_order(task_meta, [f.name for f in fields(TaskState)])
"""task_meta's columns in ``TaskState``'s field order: a row is ``TaskState(*row)``."""
NODE_COLUMNS = _in_field_order(task_meta, NODE_FIELDS)
"""The columns of a workflow's node: a row is ``WorkflowNode(*row)``."""
PERIODIC_COLUMNS = _in_field_order(periodic_task_meta, [f.name for f in fields(PeriodicState)])
WORKER_COLUMNS = _in_field_order(worker_meta, [f.name for f in fields(WorkerState)])
HISTORY_COLUMNS = _in_field_order(task_event, ["event_id", "task_id", "type", "status", "attempt", "occurred_at",
                                               "partition", "offset", "payload"])  # fmt: skip


def history_row(row: Sequence[Any]) -> HistoryRow:
    """A ``task_event`` row selected as ``HISTORY_COLUMNS``."""
    event_id, key, type_, status, attempt, occurred_at, partition, offset, payload = row
    return HistoryRow(event_id, key, type_, status, attempt, occurred_at, partition, offset, payload.encode())


def worker_state(row: Sequence[Any]) -> WorkerState:
    """A ``worker_meta`` row selected as ``WORKER_COLUMNS`` (its load average back to a tuple)."""
    state = WorkerState(*row)
    load = state.loadavg  # a JSON list
    return state if load is None else replace(state, loadavg=(load[0], load[1], load[2]))


def precedence(column: ColumnElement[Any]) -> ColumnElement[int]:
    """``CASE <column> WHEN 'PENDING' THEN 0 …``: the domain's precedence table in SQL, so
    the database ranks events as ``fold.rank`` does."""
    return case({status.value: rank for status, rank in PRECEDENCE.items()}, value=column)


class Database(ABC):
    """How to reach one copy of the views; the engine is made on first use."""

    byte_order_collation: str
    """The collation that orders text by its bytes (as Python orders ``str``)."""

    begin_statement: str | None = None
    """What a write transaction starts with, where the driver's own BEGIN is not right."""

    def __init__(self) -> None:
        self._engine: Engine | None = None

    @property
    @abstractmethod
    def where(self) -> str:
        """The views' location for messages (never a password)."""

    @abstractmethod
    def _create_engine(self) -> Engine:
        """An engine whose connections reach the views."""

    @abstractmethod
    def _translate(self, exc: DBAPIError) -> Exception | None:
        """The ledger's error for a driver error (``ViewStoreUnavailable``,
        ``ViewsNotCreated``), or None to let it through."""

    @abstractmethod
    def members(self, column: ColumnElement[Any], values: Collection[str]) -> ColumnElement[bool]:
        """``column`` is one of ``values`` (thousands of them: one bound value, not one each)."""

    @abstractmethod
    def epoch_seconds(self, column: ColumnElement[Any]) -> ColumnElement[float]:
        """A timestamp column as seconds since the Unix epoch (how a trend buckets times)."""

    @abstractmethod
    def whole_seconds(self, column: ColumnElement[Any]) -> ColumnElement[int]:
        """A timestamp column as WHOLE seconds since the epoch, rounded down, exactly (no
        float at a bucket's edge): how a series buckets times identically on every backend."""

    def nearest_ranks(self, values: Subquery, shares: Sequence[int]) -> Select[Any]:
        """Per ``values.c.bucket``, the nearest-rank percentile (``domain.series.nearest_rank``)
        of ``values.c.value`` for each of ``shares``: one row (bucket, p, ...) per bucket.
        Portable form: each value's row number and its bucket's count (window functions),
        the rank formula in integers, the value at that rank."""
        v = values.c
        ranked = select(
            v.bucket, v.value,
            func.row_number().over(partition_by=v.bucket, order_by=v.value).label("rn"),
            func.count().over(partition_by=v.bucket).label("n"),
        ).subquery("ranked")  # fmt: skip
        r = ranked.c
        picks = [func.max(case((r.rn == (literal(share) * r.n + 99) // 100, r.value))) for share in shares]
        return select(r.bucket, *picks).group_by(r.bucket)

    @abstractmethod
    def contains(self, document: ColumnElement[Any], term: str) -> ColumnElement[bool]:
        """``term`` (case-folded, ``domain.search``) occurs in ``document`` as a plain
        substring: the search rule itself, which the PostgreSQL trigram index serves."""

    def text_candidates(self, terms: Sequence[str]) -> ColumnElement[bool] | None:
        """A condition on ``task_meta`` that an index serves and that every task whose
        document holds all ``terms`` meets (None: ``contains`` is served by itself)."""
        return None

    @abstractmethod
    def kwarg_equals(self, key: str, value: Scalar) -> ColumnElement[bool]:
        """``task_meta.kwargs`` holds ``key`` with a JSON scalar equal to ``value`` (numbers
        by value, 42 == 42.0; a string never equals a number; true is not 1)."""

    def floor(self, value: ColumnElement[float]) -> ColumnElement[int]:
        """The integer part of a NON-NEGATIVE number (CAST truncates on SQLite, whose FLOOR
        is optional; PostgreSQL's CAST rounds, hence its FLOOR first)."""
        return cast(value, Integer)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = self._create_engine()
        return self._engine

    def dispose(self) -> None:
        """Close the connections; the next use opens new ones."""
        if self._engine is not None:
            self._engine.dispose()
        self._engine = None

    @contextmanager
    def errors(self) -> Iterator[None]:
        try:
            yield
        except DBAPIError as exc:
            mapped = self._translate(exc)
            if mapped is None:
                raise
            raise mapped from exc

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads (each statement its own snapshot)."""
        with self.errors(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        with self.errors(), self.engine.begin() as conn:
            if self.begin_statement:
                conn.exec_driver_sql(self.begin_statement)
            yield conn

    def top_statuses_as_of(self, at: ColumnElement[Any]) -> Select[Any]:
        """Per task, the status of its top-ranked event among those that occurred by ``at``
        (columns ``task_id``, ``status``): ``ROW_NUMBER()`` over each task's events in rank order."""
        e = task_event.c
        ranked = (
            select(e.task_id, e.status, func.row_number().over(partition_by=e.task_id, order_by=(
                e.attempt.desc(), precedence(e.status).desc(), e.occurred_at.desc(), e.event_id.desc()
            )).label("top"))
            .where(e.occurred_at <= at, e.status.is_not(None))
            .subquery("ranked")
        )  # fmt: skip
        return select(ranked.c.task_id, ranked.c.status).where(ranked.c.top == 1)

    @contextmanager
    def index_lookups(self, conn: Connection) -> Iterator[None]:
        """Around a query whose plan must stay index lookups whatever the statistics say
        (the as-of query, the workflow closure): the planner settings that needs (none by
        default)."""
        yield

