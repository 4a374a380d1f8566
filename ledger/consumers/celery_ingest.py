"""The Celery-events ingester: drain → decode → translate → append → dead letters → ack.

Celery workers started with ``-E`` (``worker_send_task_events``) publish their tasks'
transitions on the broker's event exchange; this loop turns each into the ledger's event
(``translate``: the Celery-event rules live in ``ledger.contrib.celery_events``) and appends
it to the event log. Invariant 7: a batch is acknowledged to the broker only after the log
acknowledged its append, and after its dead letters were written, so on RabbitMQ a crash
loses nothing (the unacknowledged batch is delivered again; the same transitions have the
same event ids, so a second append is held once). On Redis there is no ack to give
(``celery_broker``): what the broker does not deliver is not seen.

Back-pressure, never an unbounded buffer: while the log cannot be reached, the batch in
hand is retried with the one retry policy and nothing more is read from the broker
(RabbitMQ holds at most the prefetch unacknowledged). A message that is not JSON, not a
Celery event, or a task event that makes no valid ledger event is counted, logged and
dead-lettered with its raw body; the ingester goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ledger.codec import PLAIN, Codec
from ledger.consumers.celery_broker import BrokerEvents, BrokerUnavailable, Received
from ledger.consumers.celery_messages import Item, NotCeleryEvent, celery_events, checked
from ledger.consumers.deadletter import DeadLetterSink
from ledger.domain.events import LedgerEvent
from ledger.eventlog.base import AppendError, EventLog, EventLogUnavailable, LogRecord, StoredRecord
from ledger.payloads import InvalidEvent
from ledger.retry import BACKEND, Backoff, RetryPolicy, keep_trying
from ledger.wire import encode

__all__ = ["IngestStats", "Ingester", "Translate"]

logger = logging.getLogger(__name__)

Translate = Callable[[Mapping[str, Any]], LedgerEvent | None]
"""One Celery event dict → the ledger's event (a task's transition, a worker's event), None
for what the ledger does not record;
``InvalidEvent`` naming the field for one that makes no valid event."""

LOG_ERRORS: Final = (AppendError, EventLogUnavailable)
"""Failures of the log that the ingester waits out, holding its batch."""


@dataclass
class IngestStats:
    """Running totals: a caller (CLI, tests, progress lines) reads them while it runs."""

    messages: int = 0
    events: int = 0
    skipped: int = 0
    """Celery events the ledger does not record (``translate`` gave None: an unknown type,
    a rejected message that goes back to its queue)."""
    dead_letters: int = 0
    batches: int = 0
    connections: int = 0
    """Times the broker was connected to and the queue consumed from."""
    log_failures: int = 0
    """Appends the log refused or did not answer (the batch was held and tried again)."""


@dataclass
class _Batch:
    """A batch on its way to the log: what is left to append, then what to acknowledge."""

    received: list[Received]
    records: list[LogRecord] = field(default_factory=list)
    skipped: int = 0


class Ingester:
    """Reads one broker's event exchange into an event log, batch by batch."""

    def __init__(self, source: BrokerEvents, log: EventLog, dead_letters: DeadLetterSink, translate: Translate, *,
                 codec: Codec = PLAIN, batch_size: int = 500, batch_wait_ms: int = 200, poll_timeout_ms: int = 500,
                 progress_every_s: float = 30.0, retry: RetryPolicy = BACKEND,
                 on_connected: Callable[[], None] | None = None) -> None:  # fmt: skip
        self.source, self.log, self.dead_letters, self.translate = source, log, dead_letters, translate
        self.on_connected = on_connected
        """Called after each connection to the broker, the queue consumed from: on Redis, what
        was published before it is gone, so that is when to look for what was missed."""
        self.codec, self.batch_size = codec, batch_size
        self.batch_wait_s, self.poll_timeout_s = batch_wait_ms / 1000, poll_timeout_ms / 1000
        self.progress_every_s = progress_every_s
        self.stats = IngestStats()
        self._broker = Backoff("broker away, reconnecting", logger, retry)
        self._log = Backoff("event log away, holding the batch and retrying", logger, retry)
        self._connected = False
        self._next_progress = time.monotonic() + progress_every_s

    # -- the loop -------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> IngestStats:
        """Ingest until ``stop`` is set; the batch in hand is appended and acknowledged
        first (unless the log is away then: it stays unacknowledged, for the next reader)."""
        logger.info("ingester started", extra={"source": self.source.where, "topic": self.log.topic})
        try:
            while not stop.is_set():
                self.step(stop)
        finally:
            self.source.close()
        self._progress("ingester stopped")
        return self.stats

    def step(self, stop: threading.Event | None = None) -> int:
        """One batch: returns how many messages were acknowledged (or, on Redis, taken)."""
        if not self._connected and not self._connect(stop):
            return 0
        try:
            received = self._collect(stop)
        except BrokerUnavailable as exc:
            self._lost(exc, stop)
            return 0
        if received:
            batch = self._prepare(received)
            if not keep_trying(lambda: self._store(batch), self._log, LOG_ERRORS, stop):
                return 0  # stopped while the log was away: nothing acknowledged, all delivered again
            self._log.succeeded()
            try:
                self.source.ack(received)
            except BrokerUnavailable as exc:
                self._lost(exc, stop)  # appended, not acknowledged: delivered again, held once
            self._count(batch)
        if time.monotonic() >= self._next_progress:
            self._progress("ingest progress")
        return len(received)

    def _connect(self, stop: threading.Event | None) -> bool:
        self._connected = keep_trying(self.source.open, self._broker, (BrokerUnavailable,), stop)
        if self._connected:
            self._broker.succeeded()
            self.stats.connections += 1
            logger.info("consuming", extra={"source": self.source.where})
            if self.on_connected is not None:
                self.on_connected()
        return self._connected

    def _lost(self, exc: BrokerUnavailable, stop: threading.Event | None) -> None:
        self.source.close()
        self._connected = False
        self._broker.failed(exc)
        self._broker.wait(stop)

    def _collect(self, stop: threading.Event | None) -> list[Received]:
        received = self.source.drain(self.batch_size, self.poll_timeout_s)
        deadline = time.monotonic() + self.batch_wait_s
        while received and len(received) < self.batch_size and time.monotonic() < deadline:
            if stop is not None and stop.is_set():
                break
            more = self.source.drain(self.batch_size - len(received), 0.05)
            if not more:
                break
            received += more
        return received

    def close(self) -> None:
        """Release the broker and the logs (what they hold is flushed first). Idempotent."""
        self.source.close()
        self.log.close()
        if self.dead_letters.log is not None:
            self.dead_letters.log.close()

    # -- a batch ----------------------------------------------------------------------------
    def _prepare(self, received: list[Received]) -> _Batch:
        """The batch's events translated and encoded, in the order they arrived (a late
        one is the precedence rule's to place); each message holding something that is not
        a valid event is a dead letter, once."""
        batch, problems = _Batch(received), defaultdict(list)
        items: list[Item] = []
        for number, message in enumerate(received):
            try:
                values = celery_events(message.body, message.content_type)
            except NotCeleryEvent as exc:
                problems[number].append(str(exc))
                continue
            items += [Item(number, index, len(values), value) for index, value in enumerate(values, start=1)]
        for item in items:
            try:
                event = self.translate(checked(item.value))
                if event is None:
                    batch.skipped += 1
                else:
                    batch.records.append(encode(event, self.codec))
            except (NotCeleryEvent, InvalidEvent) as exc:
                problems[item.message].append(item.label(str(exc)))
            except Exception as exc:  # a bug in translation must not stop the stream: kept, and loud
                logger.exception("celery event could not be translated", extra={"item": item.label("")})
                problems[item.message].append(item.label(f"translation failed: {type(exc).__name__}: {exc}"))
        for number, reasons in sorted(problems.items()):
            self._dead_letter(received[number], "; ".join(reasons))
        return batch

    def _dead_letter(self, message: Received, reason: str) -> None:
        logger.warning("celery event dead-lettered", extra={"reason": reason, "routing_key": message.routing_key,
                                                          "bytes": len(message.body)})  # fmt: skip
        origin = StoredRecord(topic=self.source.config.exchange, partition=-1, offset=-1,
                              key=message.routing_key.encode(), value=message.body,
                              headers=(("content_type", (message.content_type or "").encode()),))  # fmt: skip
        self.dead_letters.add(origin, reason)

    def _store(self, batch: _Batch) -> None:
        """Step 4 then 5: the events, then the dead letters; a retry redoes only what is
        left (an append that failed after storing some records stores them again: held once)."""
        try:
            if batch.records:
                self.log.append(batch.records)
                self.stats.events += len(batch.records)
                batch.records = []
            self.stats.dead_letters += self.dead_letters.flush()
        except LOG_ERRORS:
            self.stats.log_failures += 1
            raise

    def _count(self, batch: _Batch) -> None:
        self.stats.messages += len(batch.received)
        self.stats.skipped += batch.skipped
        self.stats.batches += 1

    def _progress(self, message: str) -> None:
        self._next_progress = time.monotonic() + self.progress_every_s
        s = self.stats
        logger.info(message, extra={"messages": s.messages, "events": s.events, "skipped": s.skipped,
                                 "dead_letters": s.dead_letters, "batches": s.batches})  # fmt: skip
