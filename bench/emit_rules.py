"""Row "emit rules": what the emit side's rules (``domain.aggregates``: each step checked and
recorded on the task's run) add to recording a task, in CPU per task.

One task = the four steps a Celery task takes (pending, received, started, succeeded).
Three figures, each the median of a few rounds on the same machine in the same run:

- ``rules``: the aggregates alone (a new ``TaskRun``, four planned and taken steps);
- ``sdk``: the SDK's direct calls for the four steps into a log that discards the records
  (validation, the rules, encoding: the whole emit path but the network);
- baseline ``encode``: building and encoding the same four events without the rules.

``sdk - encode`` is what the rules cost on the emit path; the target is under 50 µs.
Times are this process's CPU time (``time.process_time``): a cost, not a wait, and steadier
than wall time on a machine other processes share.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from ledger.domain.aggregates import TaskRun
from ledger.domain.events import TaskPending, TaskReceived, TaskStarted, TaskSucceeded
from ledger.domain.statuses import TaskStatus
from ledger.eventlog.base import EventLog, LogRecord, Position, Start, StoredRecord
from ledger.sdk import Ledger
from ledger.wire import encode

__all__ = ["measure_emit_rules"]

STEPS: Final = (TaskStatus.PENDING, TaskStatus.RECEIVED, TaskStatus.STARTED, TaskStatus.DONE)
ROUNDS: Final = 5


class DiscardingLog(EventLog):
    """Acknowledges every record at once and keeps none: the emit path without the network."""

    topic, partitions = "bench-discard", 1

    def append(self, records: Sequence[LogRecord]) -> list[Position]:
        return [Position(0, 0) for _ in records]

    def _read_ranges(self, ranges: dict[int, tuple[int, int]]) -> Iterator[StoredRecord]:
        return iter(())

    def subscribe(self, start: Start = "end", *, stop_event: threading.Event | None = None,
                  poll_timeout_ms: int | None = None) -> Iterator[list[StoredRecord]]:  # fmt: skip
        return iter(())

    def end_offsets(self) -> dict[int, int]:
        return {0: 0}

    def beginning_offsets(self) -> dict[int, int]:
        return {0: 0}

    def offsets_for_time(self, timestamp_ms: int) -> dict[int, int]:
        return {0: 0}

    def partition_for(self, key: str) -> int:
        return 0

    def close(self) -> None:
        pass


def _rules(tasks: int, offset: int) -> None:
    """As the SDK takes them: each step recorded at its event's time (made once per step)."""
    for i in range(tasks):
        run = TaskRun(f"rules-{offset}-{i}")
        for status in STEPS:
            run.take(run.plan(status), datetime.now(UTC))


def _sdk(tasks: int, offset: int) -> None:
    ledger = Ledger(DiscardingLog(), worker="celery@bench")
    for i in range(tasks):
        task_id = f"sdk-{offset}-{i}"
        ledger.pending(task_id, "bench.add", args=[i, 1], kwargs={})
        ledger.received(task_id, "bench.add", args=[i, 1], kwargs={})
        ledger.started(task_id, "bench.add")
        ledger.succeeded(task_id, "bench.add", result=i + 1, runtime=0.001)


def _encode(tasks: int, offset: int) -> None:
    for i in range(tasks):
        task_id = f"enc-{offset}-{i}"
        encode(TaskPending(task_id=task_id, task_name="bench.add", args=[i, 1], kwargs={}))
        encode(TaskReceived(task_id=task_id, task_name="bench.add", args=[i, 1], kwargs={}))
        encode(TaskStarted(task_id=task_id, task_name="bench.add"))
        encode(TaskSucceeded(task_id=task_id, task_name="bench.add", result=i + 1, runtime=0.001))


def _per_task_us(work: Callable[[int, int], None], tasks: int) -> float:
    rounds = []
    for offset in range(ROUNDS):
        began = time.process_time()
        work(tasks, offset)
        rounds.append((time.process_time() - began) / tasks * 1e6)
    return round(statistics.median(rounds), 2)


def measure_emit_rules(tasks: int = 20_000) -> dict[str, Any]:
    sdk, encode_only = _per_task_us(_sdk, tasks), _per_task_us(_encode, tasks)
    return {"rules_us_per_task": _per_task_us(_rules, tasks), "sdk_us_per_task": sdk,
            "encode_us_per_task": encode_only, "added_us_per_task": round(sdk - encode_only, 2),
            "tasks": tasks}  # fmt: skip
