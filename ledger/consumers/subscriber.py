"""The subscriber: typed status events for other services, filtered, resumable.

The group's position of an event is saved once the caller's code for it has run: with
``run(handler)`` right after the handler returned; when iterating, when the caller asks for
the next event (the loop body ran). So a crash inside the body delivers that event again
and never one whose body completed, and nothing is skipped (at-least-once). Leaving the
loop with ``break`` (or an exception) saves everything before that event, not the event
itself: a restart delivers it again. Events filtered out are never delivered; their
positions advance with the next save. ``save_every=N`` trades that for speed (one save
per N events): a crash then also redelivers up to N-1 events whose body had run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from typing import Self

from ledger.codec import PLAIN, Codec
from ledger.consumers.positions import PositionStore
from ledger.domain.events import AnyEvent, TaskEvent
from ledger.domain.statuses import TaskStatus, parse_status
from ledger.eventlog.base import EventLog, EventLogUnavailable, StoredRecord
from ledger.eventlog.group import PartitionSource
from ledger.retry import Backoff
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
    """Yields the events of the partitions its source owns, from where ``start`` says.

    Use it as a context manager (or call ``close``) from the thread that iterates it; to
    stop it from another thread, pass ``stop`` to ``run`` or ``deliveries``."""

    def __init__(self, source: PartitionSource, positions: PositionStore, log: EventLog, *,
                 start: StartAt = "stored", wanted: EventFilter | None = None, codec: Codec = PLAIN,
                 poll_timeout_ms: int = 500, batch: int = 500, save_every: int = 1) -> None:  # fmt: skip
        if save_every < 1:
            raise ValueError(f"save_every must be at least 1, got {save_every}")
        self.source, self.positions, self.log, self.start = source, positions, log, start
        self.wanted, self.codec = wanted or EventFilter(), codec
        self.poll_timeout_ms, self.batch, self.save_every = poll_timeout_ms, batch, save_every
        self._seen: set[int] = set()  # partitions assigned before: later assignments resume
        self._pending: dict[int, int] = {}  # next offsets not saved yet
        self._unsaved = 0  # handled events whose position is not saved yet
        logger = logging.getLogger(__name__)
        self._polls = Backoff("log unavailable; retrying", logger)
        self._saves = Backoff("could not save positions; will retry", logger)  # tried again before a poll
        self._save_failed = False  # the last save failed: no save per event until one succeeds
        self._active: Generator[Delivery, None, None] | None = None
        self._closed = False
        self.undecodable = 0
        self.before_save: Callable[[], None] | None = None
        """Called before positions of handled events are saved: a caller keeping state of its
        own (the alert runner) saves it there, so that state is never behind the position."""

    def _on_assigned(self, partitions: set[int]) -> dict[int, int]:
        stored = self.positions.load(partitions)
        first = partitions - self._seen
        explicit = self._explicit_start(first) if first and self.start != "stored" else {}
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
        """Forget what is not saved for partitions now owned by another member (a save
        happens before every poll, and a rebalance happens inside one, so this is only what
        a failed save kept): saving it later could move the group's position back."""
        for partition in partitions:
            self._pending.pop(partition, None)

    # -- reading ----------------------------------------------------------------------------
    def deliveries(self, stop: threading.Event | None = None) -> Generator[Delivery, None, None]:
        """Every wanted event with its coordinates, until ``stop`` is set; each one's
        position is saved when the next one is asked for."""
        with closing(self._records(stop)) as records:
            for delivery in records:
                yield delivery  # returns here only after the caller's body ran
                if self._closed:
                    return  # closed inside the body: the loop ends, the event comes again
                self._done(delivery)

    def __iter__(self) -> Iterator[AnyEvent]:
        return (delivery.event for delivery in self.deliveries())

    def run(self, handler: Callable[[AnyEvent], object], *, stop: threading.Event | None = None,
            max_events: int | None = None) -> int:  # fmt: skip
        """Call ``handler`` for each wanted event; its position is saved once it returned
        (an exception propagates and leaves the event to be delivered again). Returns how
        many events were handled."""
        handled = 0
        with closing(self._records(stop)) as records:
            for delivery in records:
                handler(delivery.event)
                if self._closed:
                    break  # closed by the handler: it did not return first, the event comes again
                self._done(delivery)
                handled += 1
                if max_events is not None and handled >= max_events:
                    break
        return handled

    def _records(self, stop: threading.Event | None) -> Generator[Delivery, None, None]:
        if self._closed:
            raise RuntimeError("this subscriber is closed: subscribe again")
        self._active = self._wanted(stop)
        return self._active

    def _wanted(self, stop: threading.Event | None) -> Generator[Delivery, None, None]:
        """Wanted events in per-partition log order; the others' positions wait for the
        next save. Leaving saves what was handled and leaves the group."""
        self.source.start(self._on_assigned, self._on_revoked)
        try:
            while stop is None or not stop.is_set():
                if self._saves.due():
                    self.flush()
                for record in self._poll(stop):
                    delivery = self._decode(record)
                    if delivery is not None and self.wanted(delivery.event):
                        yield delivery
                    else:
                        self._pending[record.partition] = record.offset + 1
        finally:
            self.flush()
            self.source.close()

    def _done(self, delivery: Delivery) -> None:
        """The caller's code for ``delivery`` ran: its position may be saved."""
        self._pending[delivery.partition] = delivery.offset + 1
        self._unsaved += 1
        if self._unsaved >= self.save_every and not self._save_failed:
            self.flush()

    def _poll(self, stop: threading.Event | None) -> list[StoredRecord]:
        """A poll that waits out a broker outage (the retry policy's delay, cut short by
        ``stop``) instead of ending the subscription."""
        try:
            records = self.source.poll(self.batch, self.poll_timeout_ms)
        except EventLogUnavailable as exc:
            self._polls.failed(exc)
            self._polls.wait(stop)
            return []
        self._polls.succeeded()
        return records

    def _decode(self, record: StoredRecord) -> Delivery | None:
        try:
            return Delivery(decode(record, self.codec), record.partition, record.offset)
        except InvalidRecord as exc:  # the projector dead-letters it; a subscriber skips it, loudly
            self.undecodable += 1
            where = {"partition": record.partition, "offset": record.offset, "reason": exc.reason}
            log.warning("undecodable record skipped", extra=where)
            return None

    # -- saving and closing -----------------------------------------------------------------
    def flush(self) -> None:
        """Save the positions of everything handled (or filtered out) so far. A save that
        fails (broker away) keeps them, and the next try waits for a poll once the retry
        policy's delay has passed, rather than costing a timeout per event: at worst
        events are delivered again, never skipped."""
        if self._pending:
            if self.before_save is not None:
                self.before_save()
            try:
                self.positions.save(dict(self._pending))
            except EventLogUnavailable as exc:
                self._save_failed = True
                self._saves.failed(exc)
                return
            self._pending.clear()
        self._unsaved, self._save_failed = 0, False
        self._saves.succeeded()

    def close(self) -> None:
        """Save the positions of what was handled, leave the group (its partitions go to the
        other members at once) and release the log. Idempotent; the event in hand when the
        loop was left is not saved, so it comes again."""
        if self._closed:
            return
        self._closed = True
        if self._active is not None:
            self._active.close()  # its own exit saves and leaves the group
        self.positions.close()
        self.log.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
