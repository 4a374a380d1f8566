"""Helpers for the Celery integration tests: a log that can be broken on demand, waiting
for a worker that acknowledges results before it sends its last signals, and histories."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

from ledger.eventlog.base import AppendError, EventLog, LogRecord, PendingAppend, Position, Start, StoredRecord
from ledger.projections.store import ViewWriter


class BreakableLog(EventLog):
    """``inner``, except that every append raises ``AppendError`` while ``broken``."""

    def __init__(self, inner: EventLog) -> None:
        self.inner, self.topic, self.partitions = inner, inner.topic, inner.partitions
        self.broken = False

    def _check(self) -> None:
        if self.broken:
            raise AppendError("the log is broken (test)")

    def append(self, records: Sequence[LogRecord]) -> list[Position]:
        self._check()
        return self.inner.append(records)

    def append_nowait(self, records: Sequence[LogRecord]) -> PendingAppend:
        self._check()
        return self.inner.append_nowait(records)

    def flush(self, timeout: float | None = None) -> None:
        self.inner.flush(timeout)

    def _read_ranges(self, ranges: dict[int, tuple[int, int]]) -> Iterator[StoredRecord]:
        return self.inner._read_ranges(ranges)

    def subscribe(self, start: Start = "end", *, stop_event: threading.Event | None = None,
                  poll_timeout_ms: int | None = None) -> Iterator[list[StoredRecord]]:
        return self.inner.subscribe(start, stop_event=stop_event, poll_timeout_ms=poll_timeout_ms)

    def end_offsets(self) -> dict[int, int]:
        return self.inner.end_offsets()

    def beginning_offsets(self) -> dict[int, int]:
        return self.inner.beginning_offsets()

    def offsets_for_time(self, timestamp_ms: int) -> dict[int, int]:
        return self.inner.offsets_for_time(timestamp_ms)

    def partition_for(self, key: str) -> int:
        return self.inner.partition_for(key)

    def close(self) -> None:
        self.inner.close()


def eventually(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Wait for ``check()``: a worker stores a result before it sends ``task_success``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def history(store: ViewWriter, task_ids: Sequence[str]) -> Mapping[str, list[tuple[int, str]]]:
    """Per task, ``(attempt, event type)`` in log order within each attempt. Across
    attempts the log order is a race (a retry's RETRY and the next attempt's RECEIVED come
    from two threads), within one attempt it is causal."""
    rows: dict[str, list[tuple[int, str]]] = {task_id: [] for task_id in task_ids}
    for row in store.task_history(task_ids):
        rows[row.key].append((row.attempt, row.type))
    return {task_id: sorted(events, key=lambda e: e[0]) for task_id, events in rows.items()}
