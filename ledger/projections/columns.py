"""Column lists of the views and the mapping between rows and domain states.

Shared by every view store so the backends cannot drift: a backend only supplies how a
JSON value, a timestamp and a UUID look in its dialect (``Dialect``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any
from uuid import UUID

from ledger.domain.fold import TaskState
from ledger.domain.periodic import PeriodicState
from ledger.domain.statuses import TaskStatus
from ledger.projections.store import HistoryRow, RunOutcome

TASK_COLUMNS = (
    "task_id",
    "name",
    "status",
    "result",
    "traceback",
    "exc_type",
    "exc_message",
    "retries",
    "args",
    "kwargs",
    "worker",
    "eta",
    "date_pending",
    "date_received",
    "date_started",
    "date_done",
    "runtime",
    "last_event_id",
    "last_offset",
    "first_seen",
    "exc_args",
)
TASK_JSON = frozenset({"result", "args", "kwargs", "exc_args"})
TASK_TIMES = frozenset({"eta", "date_pending", "date_received", "date_started", "date_done", "first_seen"})

PERIODIC_COLUMNS = (
    "name",
    "task",
    "interval_seconds",
    "enabled",
    "last_run_at",
    "total_run_count",
    "last_run_task_id",
    "config_at",
    "config_event_id",
    "last_event_id",
    "registered_at",
    "registered_event_id",
    "last_run_event_id",
)
PERIODIC_TIMES = frozenset({"last_run_at", "config_at", "registered_at"})
PERIODIC_UUIDS = frozenset({"config_event_id", "last_event_id", "registered_event_id", "last_run_event_id"})

TASK_EVENT_COLUMNS = (
    "event_id",
    "task_id",
    "type",
    "status",
    "attempt",
    "occurred_at",
    "partition",
    "offset",
    "payload",
)
PERIODIC_EVENT_COLUMNS = (
    "event_id",
    "name",
    "type",
    "task_id",
    "occurred_at",
    "partition",
    "offset",
    "payload",
)


def utc_text(value: datetime) -> str:
    """A timestamp as fixed-width UTC ISO text: sorts as text the way it sorts as time."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def parse_time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one backend stores JSON, timestamps and UUIDs."""

    dump_json: Callable[[Any], Any]
    load_json: Callable[[Any], Any]
    dump_time: Callable[[datetime], Any]
    dump_uuid: Callable[[UUID], Any]
    dump_bool: Callable[[bool], Any]


def json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _values(row: object, columns: Sequence[str], dialect: Dialect, *, json_columns: frozenset[str] = frozenset(),
            times: frozenset[str] = frozenset(), uuids: frozenset[str] = frozenset(),
            bools: frozenset[str] = frozenset()) -> tuple[Any, ...]:  # fmt: skip
    """A state's attributes as the backend's column values, in ``columns`` order."""
    values: list[Any] = []
    for column in columns:
        value = getattr(row, column)
        if value is None:
            values.append(None)
        elif column in json_columns:
            values.append(dialect.dump_json(value))
        elif column in times:
            values.append(dialect.dump_time(value))
        elif column in uuids:
            values.append(dialect.dump_uuid(value))
        elif column in bools:
            values.append(dialect.dump_bool(value))
        else:
            values.append(str(value) if isinstance(value, TaskStatus) else value)
    return tuple(values)


_task_fields = attrgetter(*TASK_COLUMNS)


def task_values(state: TaskState, dialect: Dialect) -> tuple[Any, ...]:
    """What ``_values`` gives for a task row, unrolled: this runs for every row a batch
    writes, and the generic loop's per-column set look-ups cost more than the values."""
    (task_id, name, status, result, traceback, exc_type, exc_message, retries, args, kwargs, worker, eta,
     date_pending, date_received, date_started, date_done, runtime, last_event_id, last_offset,
     first_seen, exc_args) = _task_fields(state)
    json_, time_ = dialect.dump_json, dialect.dump_time
    return (task_id, name, str(status) if isinstance(status, TaskStatus) else status,
            None if result is None else json_(result), traceback, exc_type, exc_message, retries,
            None if args is None else json_(args), None if kwargs is None else json_(kwargs), worker,
            None if eta is None else time_(eta), None if date_pending is None else time_(date_pending),
            None if date_received is None else time_(date_received),
            None if date_started is None else time_(date_started), None if date_done is None else time_(date_done),
            runtime, None if last_event_id is None else dialect.dump_uuid(last_event_id), last_offset,
            time_(first_seen), None if exc_args is None else json_(exc_args))  # fmt: skip


def task_from_row(row: Sequence[Any], dialect: Dialect) -> TaskState:
    data = dict(zip(TASK_COLUMNS, row, strict=True))
    for column in TASK_JSON:
        data[column] = dialect.load_json(data[column]) if data[column] is not None else None
    for column in TASK_TIMES:
        data[column] = parse_time(data[column])
    data["status"] = TaskStatus(data["status"])
    data["last_event_id"] = UUID(str(data["last_event_id"]))
    return TaskState(**data)


def periodic_values(state: PeriodicState, dialect: Dialect) -> tuple[Any, ...]:
    return _values(state, PERIODIC_COLUMNS, dialect, times=PERIODIC_TIMES, uuids=PERIODIC_UUIDS,
                   bools=frozenset({"enabled"}))  # fmt: skip


def periodic_from_row(row: Sequence[Any]) -> PeriodicState:
    data = dict(zip(PERIODIC_COLUMNS, row, strict=True))
    for column in PERIODIC_TIMES:
        data[column] = parse_time(data[column])
    for column in PERIODIC_UUIDS:
        data[column] = UUID(str(data[column])) if data[column] is not None else None
    data["enabled"] = bool(data["enabled"])
    return PeriodicState(**data)


def task_event_values(row: HistoryRow, dialect: Dialect) -> tuple[Any, ...]:
    return (
        dialect.dump_uuid(row.event_id),
        row.key,
        row.type,
        row.status,
        row.attempt,
        dialect.dump_time(row.occurred_at),
        row.partition,
        row.offset,
        row.payload.decode(),
    )


def periodic_event_values(row: HistoryRow, dialect: Dialect) -> tuple[Any, ...]:
    return (
        dialect.dump_uuid(row.event_id),
        row.key,
        row.type,
        row.run_task_id,
        dialect.dump_time(row.occurred_at),
        row.partition,
        row.offset,
        row.payload.decode(),
    )


def history_from_row(row: Sequence[Any], *, periodic: bool) -> HistoryRow:
    """A history row read back; column order as in ``*_EVENT_COLUMNS``."""
    run_task_id = None
    if periodic:
        event_id, key, type_, run_task_id, occurred_at, partition, offset, payload = row
        status, attempt = None, 0
    else:
        event_id, key, type_, status, attempt, occurred_at, partition, offset, payload = row
    if not isinstance(payload, str | bytes):
        payload = json_text(payload)
    return HistoryRow(
        event_id=UUID(str(event_id)),
        key=key,
        type=type_,
        status=status,
        attempt=attempt,
        occurred_at=parse_time(occurred_at) or datetime.min.replace(tzinfo=UTC),
        partition=partition,
        offset=offset,
        payload=payload.encode() if isinstance(payload, str) else payload,
        run_task_id=run_task_id,
    )


PERIODIC_RUNS_SQL = (
    "SELECT e.name, e.occurred_at, e.task_id, t.status, t.date_done FROM periodic_task_event e "
    "LEFT JOIN task_meta t ON t.task_id = e.task_id WHERE e.type = 'periodic.triggered' "
    "ORDER BY e.name, e.occurred_at, e.event_id"
)


def periodic_runs_from_rows(rows: Iterable[Sequence[Any]]) -> dict[str, list[RunOutcome]]:
    runs: dict[str, list[RunOutcome]] = {}
    for name, triggered_at, task_id, status, date_done in rows:
        runs.setdefault(name, []).append(
            RunOutcome(
                triggered_at=parse_time(triggered_at) or datetime.min.replace(tzinfo=UTC),
                task_id=task_id,
                status=TaskStatus(status) if status else None,
                date_done=parse_time(date_done),
            )
        )
    return runs
