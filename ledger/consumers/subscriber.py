"""The subscriber: typed status events for other services, filtered, resumable.

``run(handler)`` saves an event's position once the handler returned; iterating saves it
when the caller asks for the next event (after the loop body ran), so leaving the loop
with ``break`` redelivers the last event after a restart. Either way a crash inside the
handler delivers that event again and nothing is skipped (at-least-once). Saves are
batched (before each poll, on a rebalance and on close): one commit per batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from ledger.codec import PLAIN, Codec
from ledger.consumers.positions import PositionStore
from ledger.consumers.source import PartitionSource
from ledger.domain.events import AnyEvent, TaskEvent
from ledger.domain.statuses import TaskStatus, parse_status
from ledger.eventlog.base import EventLog, EventLogUnavailable, StoredRecord
from ledger.wire import InvalidRecord, decode

log = logging.getLogger(__name__)

StartAt = str | datetime | Mapping[int, int]
"""``"stored"`` (resume; the end if nothing is stored), ``"beginning"``, ``"end"``, a
timestamp, or explicit ``{partition: offset}`` positions."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """An event with the coordinates it was read from."""

    event: AnyEvent
    partition: int
    offset: int


class EventFilter:
    """Which events a subscriber wants: statuses (aliases accepted) and task names."""

    def __init__(self, statuses: Iterable[str | TaskStatus] = (), names: Iterable[str] = (),
                 task_ids: Iterable[str] = ()) -> None:  # fmt: skip
        self.statuses = frozenset(parse_status(s) if isinstance(s, str) else s for s in statuses)
        self.names, self.task_ids = frozenset(names), frozenset(task_ids)

    def __call__(self, event: AnyEvent) -> bool:
        if not isinstance(event, TaskEvent):
            return not (self.statuses or self.names or self.task_ids)
        return (
            (not self.statuses or event.status in self.statuses)
            and (not self.names or event.task_name in self.names)
            and (not self.task_ids or event.task_id in self.task_ids)
        )


class Subscriber:
    """Yields the events of the partitions its source owns, from where ``start`` says."""

    def __init__(self, source: PartitionSource, positions: PositionStore, log: EventLog, *,
                 start: StartAt = "stored", wanted: EventFilter | None = None, codec: Codec = PLAIN,
                 poll_timeout_ms: int = 500, batch: int = 500) -> None:  # fmt: skip
        self.source, self.positions, self.log, self.start = source, positions, log, start
        self.wanted, self.codec = wanted or EventFilter(), codec
        self.poll_timeout_ms, self.batch = poll_timeout_ms, batch
        self._seen: set[int] = set()  # partitions assigned before: later assignments resume
        self._handled: dict[int, int] = {}
        self.undecodable = 0

    def _on_assigned(self, partitions: set[int]) -> dict[int, int]:
        stored = self.positions.load(partitions)
        first = partitions - self._seen
        explicit = self._explicit_start(first) if self.start != "stored" else {}
        unknown = partitions - set(explicit) - set(stored)
        fallback = self.log.end_offsets() if unknown else {}
        positions = {p: explicit.get(p, stored.get(p, fallback.get(p, 0))) for p in partitions}
        # the group's position starts here: a restart resumes from it even in partitions
        # where nothing was handled yet (instead of jumping to the then-current end)
        self.positions.save({p: o for p, o in positions.items() if stored.get(p) != o})
        self._seen |= partitions
        return positions

    def _explicit_start(self, partitions: set[int]) -> dict[int, int]:
        if isinstance(self.start, datetime):
            return {
                p: o
                for p, o in self.log.offsets_for_time(int(self.start.timestamp() * 1000)).items()
                if p in partitions
            }
        resolved = self.log.resolve(self.start)
        return {p: o for p, o in resolved.items() if p in partitions}

    def _on_revoked(self, partitions: set[int]) -> None:
        """Nothing to save: positions are saved before every poll, and a rebalance happens
        inside a poll (in kafka-python's IO thread, where a commit must not block)."""

    def deliveries(self, stop: threading.Event | None = None) -> Generator[Delivery, None, None]:
        """Every wanted event, with its coordinates, until ``stop`` is set."""
        self.source.start(self._on_assigned, self._on_revoked)
        try:
            while stop is None or not stop.is_set():
                self.flush()
                for record in self._poll():
                    delivery = self._decode(record)
                    if delivery is not None and self.wanted(delivery.event):
                        yield delivery  # returns here only after the caller's body ran
                    self._handled[record.partition] = record.offset + 1
        finally:
            self.flush()
            self.source.close()

    def _poll(self) -> list[StoredRecord]:
        """A poll that waits out a broker outage instead of ending the subscription."""
        try:
            records = self.source.poll(self.batch, self.poll_timeout_ms)
        except EventLogUnavailable as exc:
            log.warning("log unavailable; retrying", extra={"error": str(exc)})
            time.sleep(1.0)
            return []
        return records

    def __iter__(self) -> Iterator[AnyEvent]:
        return (delivery.event for delivery in self.deliveries())

    def run(self, handler: Callable[[AnyEvent], object], *, stop: threading.Event | None = None,
            max_events: int | None = None) -> int:  # fmt: skip
        """Call ``handler`` for each wanted event; its position is saved once it returned
        (an exception propagates and leaves the event to be delivered again). Returns how
        many events were handled."""
        handled = 0
        deliveries = self.deliveries(stop)
        try:
            for delivery in deliveries:
                handler(delivery.event)
                self._handled[delivery.partition] = delivery.offset + 1
                handled += 1
                if max_events is not None and handled >= max_events:
                    break
        finally:
            deliveries.close()
        return handled

    def _decode(self, record: StoredRecord) -> Delivery | None:
        try:
            return Delivery(decode(record, self.codec), record.partition, record.offset)
        except InvalidRecord as exc:  # the projector dead-letters it; a subscriber skips it, loudly
            self.undecodable += 1
            where = {"partition": record.partition, "offset": record.offset, "reason": exc.reason}
            log.warning("undecodable record skipped", extra=where)
            return None

    def flush(self) -> None:
        """Save the positions of everything handled so far. A save that fails (broker away)
        keeps them for the next try: at worst events are delivered again, never skipped."""
        if self._handled:
            try:
                self.positions.save(dict(self._handled))
            except EventLogUnavailable as exc:
                log.warning("could not save positions; will retry", extra={"error": str(exc)})
                return
            self._handled.clear()
