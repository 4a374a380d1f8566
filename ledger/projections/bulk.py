"""The values of a batch's rows as the bulk write paths send them (COPY on PostgreSQL,
executemany on SQLite), in ``schema``'s column order.

Everything else goes through SQLAlchemy and the column types of ``sqltypes``; these paths
skip it for speed (they run for every row a batch writes), with the same encodings: a
backend only says how JSON, a timestamp, a UUID and a boolean look in its bulk format
(``Encoding``, built from ``sqltypes``' functions).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any
from uuid import UUID

from ledger.domain.fold import TaskState
from ledger.domain.periodic import PeriodicState
from ledger.domain.search import search_document
from ledger.domain.statuses import TaskStatus
from ledger.projections.schema import periodic_task_event, periodic_task_meta, task_event, task_meta
from ledger.projections.store import HistoryRow

__all__ = ["PERIODIC_COLUMNS", "PERIODIC_EVENT_COLUMNS", "TASK_COLUMNS", "TASK_EVENT_COLUMNS", "Encoding",
           "periodic_event_values", "periodic_values", "task_event_values", "task_values"]  # fmt: skip

TASK_COLUMNS = tuple(task_meta.c.keys())
PERIODIC_COLUMNS = tuple(periodic_task_meta.c.keys())
TASK_EVENT_COLUMNS = tuple(task_event.c.keys())
PERIODIC_EVENT_COLUMNS = tuple(periodic_task_event.c.keys())
_PERIODIC_TIMES = frozenset({"last_run_at", "config_at", "registered_at"})
_PERIODIC_UUIDS = frozenset({"config_event_id", "last_event_id", "registered_event_id", "last_run_event_id"})


@dataclass(frozen=True, slots=True)
class Encoding:
    """How one backend's bulk path spells JSON, timestamps, UUIDs and booleans."""

    dump_json: Callable[[Any], Any]
    dump_time: Callable[[datetime], Any]
    dump_uuid: Callable[[UUID], Any]
    dump_bool: Callable[[bool], Any]


def _values(row: object, columns: Sequence[str], encoding: Encoding, *, json_columns: frozenset[str] = frozenset(),
            times: frozenset[str] = frozenset(), uuids: frozenset[str] = frozenset(),
            bools: frozenset[str] = frozenset()) -> tuple[Any, ...]:  # fmt: skip
    """A state's attributes as the backend's column values, in ``columns`` order."""
    values: list[Any] = []
    for column in columns:
        value = getattr(row, column)
        if value is None:
            values.append(None)
        elif column in json_columns:
            values.append(encoding.dump_json(value))
        elif column in times:
            values.append(encoding.dump_time(value))
        elif column in uuids:
            values.append(encoding.dump_uuid(value))
        elif column in bools:
            values.append(encoding.dump_bool(value))
        else:
            values.append(str(value) if isinstance(value, TaskStatus) else value)
    return tuple(values)


_task_fields = attrgetter(*TASK_COLUMNS[:-1])  # search_text (last) is derived: ``domain.search``


def task_values(state: TaskState, encoding: Encoding) -> tuple[Any, ...]:
    """What ``_values`` gives for a task row, unrolled: this runs for every row a batch
    writes, and the generic loop's per-column set look-ups cost more than the values. The
    last value is the row's search document, derived here so every write path stores it."""
    (task_id, name, status, result, traceback, exc_type, exc_message, retries, args, kwargs, worker, eta,
     date_pending, date_received, date_started, date_done, runtime, last_event_id, last_offset,
     first_seen, exc_args, root_id, parent_id, group_id, callback_id, queue, exchange, routing_key, expires,
     queue_wait, start_delay, total_time) = _task_fields(state)
    json_, time_ = encoding.dump_json, encoding.dump_time
    return (task_id, name, str(status) if isinstance(status, TaskStatus) else status,
            None if result is None else json_(result), traceback, exc_type, exc_message, retries,
            None if args is None else json_(args), None if kwargs is None else json_(kwargs), worker,
            None if eta is None else time_(eta), None if date_pending is None else time_(date_pending),
            None if date_received is None else time_(date_received),
            None if date_started is None else time_(date_started), None if date_done is None else time_(date_done),
            runtime, None if last_event_id is None else encoding.dump_uuid(last_event_id), last_offset,
            time_(first_seen), None if exc_args is None else json_(exc_args), root_id, parent_id, group_id,
            callback_id, queue, exchange, routing_key, None if expires is None else time_(expires), queue_wait,
            start_delay, total_time,
            search_document(task_id, name, args, kwargs, result, exc_type, exc_message))  # fmt: skip


def periodic_values(state: PeriodicState, encoding: Encoding) -> tuple[Any, ...]:
    return _values(state, PERIODIC_COLUMNS, encoding, times=_PERIODIC_TIMES, uuids=_PERIODIC_UUIDS,
                   bools=frozenset({"enabled"}))  # fmt: skip


def task_event_values(row: HistoryRow, encoding: Encoding) -> tuple[Any, ...]:
    return (
        encoding.dump_uuid(row.event_id),
        row.key,
        row.type,
        row.status,
        row.attempt,
        encoding.dump_time(row.occurred_at),
        row.partition,
        row.offset,
        row.payload.decode(),
        row.fingerprint,
    )


def periodic_event_values(row: HistoryRow, encoding: Encoding) -> tuple[Any, ...]:
    return (
        encoding.dump_uuid(row.event_id),
        row.key,
        row.type,
        row.run_task_id,
        encoding.dump_time(row.occurred_at),
        row.partition,
        row.offset,
        row.payload.decode(),
    )
