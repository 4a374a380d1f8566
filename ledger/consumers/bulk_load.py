"""A rebuild's first pass: the log folded into fresh views partition by partition, with what
the planner reads served from memory.

The projector reads back the stored rows of every task a batch touches and merges each
batch's task rows into fully indexed tables. Into fresh views most of that is waste: one
task's events share a partition (invariant 3), so while one partition is folded the rows
it has made so far are the stored rows. The same planner decides every row (so the views come out as the live
projector's), and what memory does not hold is still read from the store (a log whose
partition count grew has tasks in two partitions); each chunk's history, deletions,
decisions, workers and offsets are written as the projector writes them, each task's row
once, when its partition is done (or when ``MAX_HELD_TASKS`` rows are held), and the view
store's ``bulk_loading`` keeps the indexes the planner does not read off until the end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from uuid import UUID

from ledger.codec import Codec
from ledger.consumers.deadletter import DeadLetterSink
from ledger.consumers.projector import decode_records
from ledger.domain.fold import TaskState
from ledger.domain.periodic import PeriodicState
from ledger.eventlog.base import EventLog, StoredRecord
from ledger.projections.rows import BatchPlanner
from ledger.projections.store import Changes, HistoryRow, ViewWriter

__all__ = ["MAX_HELD_TASKS", "BulkLoad"]

log = logging.getLogger(__name__)

MAX_HELD_TASKS = 100_000
"""Task rows held in memory at most (~100 MB): beyond, they are written and then read back
from the store like the projector's, so memory stays bounded on any partition size."""


class _HeldPartition:
    """The planner's reads while one partition is folded: its task rows and the ids of its
    applied events from memory, what memory has not (another partition's rows, or rows
    written out) from the store; histories from the store; periodic rows from memory
    across partitions (this load made them all)."""

    def __init__(self, store: ViewWriter, periodic: dict[str, PeriodicState]) -> None:
        self._store, self._periodic = store, periodic
        self.tasks: dict[str, TaskState] = {}
        self._seen: set[UUID] = set()

    def load_tasks(self, task_ids: Iterable[str]) -> dict[str, TaskState]:
        held = self.tasks
        wanted = list(task_ids)
        found = {t: held[t] for t in wanted if t in held}
        return {**self._store.load_tasks(t for t in wanted if t not in found), **found}

    def load_periodic(self, names: Iterable[str]) -> dict[str, PeriodicState]:
        return {name: self._periodic[name] for name in names if name in self._periodic}

    def known_event_ids(self, event_ids: Iterable[UUID]) -> set[UUID]:
        seen = self._seen
        wanted = list(event_ids)
        known = {e for e in wanted if e in seen}
        known |= self._store.known_event_ids(e for e in wanted if e not in known)
        return known

    def task_history(self, task_ids: Iterable[str]) -> list[HistoryRow]:
        return self._store.task_history(task_ids)

    def applied(self, changes: Changes) -> None:
        """Remember what ``changes`` (planned, about to be written) makes the stored state."""
        if changes.deleted_tasks:  # an expiry deletes a task's history: its ids are unknown again
            for row in self.task_history(changes.deleted_tasks):
                self._seen.discard(row.event_id)
            for task_id in changes.deleted_tasks:
                self.tasks.pop(task_id, None)
        self.tasks.update((state.task_id, state) for state in changes.tasks)
        self._seen.update(row.event_id for row in changes.task_history)
        self._seen.update(row.event_id for row in changes.periodic_history)
        self._periodic.update((state.name, state) for state in changes.periodic)

    def write_out(self) -> list[TaskState]:
        """The held task rows, to go with the next write; memory starts over (what it held
        is read back from the store, like any miss)."""
        rows, self.tasks = list(self.tasks.values()), {}
        self._seen = set()
        return rows


def _chunks(records: Iterator[StoredRecord], size: int) -> Iterator[tuple[list[StoredRecord], bool]]:
    """``records`` in lists of ``size``, each with whether it is the last."""
    current = list(islice(records, size))
    while current:
        following = list(islice(records, size))
        yield current, not following
        current = following


class BulkLoad:
    """Folds ``log`` from its start into ``store`` (fresh views); ``run`` returns how many
    events it applied. Partitions whose start was deleted by retention are left to the
    projector that follows (which refuses them, naming the gap)."""

    def __init__(self, log: EventLog, store: ViewWriter, *, codec: Codec, projection: str, chunk_size: int,
                 progress: Callable[[int], None]) -> None:  # fmt: skip
        self.log, self.store, self.codec = log, store, codec
        self.projection, self.chunk_size, self.progress = projection, chunk_size, progress
        self.events = self.records = 0

    def run(self) -> int:
        begin, ends = self.log.beginning_offsets(), self.log.end_offsets()
        periodic: dict[str, PeriodicState] = {}
        with self.store.bulk_loading():
            for partition in sorted(ends):
                if begin.get(partition, 0) == 0 and ends[partition] > 0:
                    self._partition(partition, ends[partition], periodic)
        log.info("bulk load finished", extra={"events": self.events, "records": self.records})
        return self.events

    def _partition(self, partition: int, end: int, periodic: dict[str, PeriodicState]) -> None:
        held = _HeldPartition(self.store, periodic)
        planner = BatchPlanner(held)
        dead_letters = DeadLetterSink(None)
        stop = {p: end if p == partition else 0 for p in range(self.log.partitions)}
        expected = 0
        for records, last in _chunks(self.log.read({partition: 0}, stop=stop), self.chunk_size):
            decoded, offsets = decode_records(records, {partition: expected}, self.codec, dead_letters)
            dead_letters.flush()
            changes = planner.plan(decoded, projection=self.projection, topic=self.log.topic,
                                   expected_offsets={partition: expected}, offsets=offsets)  # fmt: skip
            held.applied(changes)
            changes.tasks = held.write_out() if last or len(held.tasks) > MAX_HELD_TASKS else []
            self.store.write(changes)
            expected = offsets[partition]
            self.events += len(decoded)
            self.records += len(records)
            self.progress(self.records)
