"""The Kafka log's append side: one idempotent producer (acks=all, ordered with 5 requests
in flight), opened on the first append and replaced after a failed one.

The partition is computed here (Kafka's own function, ``partitioning``), so a record's
position is known before the broker answers; each record's kafka-python future becomes an
``Ack`` of the port's ``Acknowledgements``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from kafka.errors import KafkaError

from ledger.eventlog.base import AppendError, EventLogUnavailable, LogRecord, Position
from ledger.eventlog.partitioning import partition_for_key
from ledger.eventlog.pending import Acknowledgements, WaitingAppender, why

__all__ = ["Appender"]

log = logging.getLogger(__name__)


class Appender(WaitingAppender):
    """Appends to ``topic`` through a producer that ``open_producer`` connects."""

    def __init__(self, topic: str, partitions: int, open_producer: Callable[[], Any], *,
                 delivery_timeout_s: float, request_timeout_s: float) -> None:  # fmt: skip
        self.topic, self.partitions, self._open = topic, partitions, open_producer
        self._delivery_timeout_s = delivery_timeout_s
        # every record sent is acknowledged or expired within the delivery time-out; the
        # margin covers the sender's own round of expiry checks
        self._close_timeout_s = delivery_timeout_s + request_timeout_s
        self._lock = threading.Lock()  # guards the producer and the closed flag
        self._producer: Any = None
        self._closed = False

    def _get_producer(self) -> Any:
        with self._lock:
            if self._closed:
                raise AppendError(f"KafkaEventLog for topic {self.topic!r} is closed")
            if self._producer is None:
                self._producer = self._open()
            return self._producer

    def append_nowait(self, records: Sequence[LogRecord]) -> Acknowledgements:
        """Records are batched (``linger_ms``/``batch_size``) and sent in the background."""
        try:
            producer = self._get_producer()
        except EventLogUnavailable as exc:  # an append that cannot start is a failed append
            raise AppendError(f"{len(records)} records not appended to Kafka topic {self.topic!r}: {exc}") from exc
        send, topic, count = producer.send, self.topic, self.partitions
        acks: list[_Ack] = []
        try:
            for record in records:
                key = record.key.encode()
                headers = list(record.headers) if record.headers else None
                partition = partition_for_key(key, count)
                acks.append(_Ack(send(topic, record.value, key, headers, partition)))
        except Exception as exc:  # too large, bad type, metadata time-out: none silently lost
            cause: BaseException | None = exc
        else:
            cause = None
        where = f"Kafka topic {topic!r}"
        return Acknowledgements(where, acks, len(records), cause, lambda: self._retire(producer))

    def _retire(self, producer: Any) -> None:
        """Replace a producer after a failed append: kafka-python 3.0.12 puts an idempotent
        producer in a fatal state on any non-retriable batch error (RecordTooLarge, say),
        after which every send would fail. The old one is closed in the background, so the
        caller who saw the failure does not wait: its other records are acknowledged, or
        fail, within the delivery time-out."""
        with self._lock:
            if self._producer is not producer:
                return  # already replaced, or closed
            self._producer = None
        closing = threading.Thread(
            target=close_producer, args=(producer, self._close_timeout_s), name="ledger-retired-producer", daemon=True
        )
        closing.start()

    def flush(self, timeout: float | None = None) -> None:
        """Send everything buffered and wait until it is acknowledged or failed."""
        producer = self._producer
        if producer is None:
            return
        try:
            producer.flush(timeout=timeout)
        except KafkaError as exc:
            raise AppendError(f"Kafka topic {self.topic!r}: flush failed: {why(exc)}") from exc

    def close(self) -> None:
        """Flush and close the producer; later appends raise ``AppendError``. Idempotent."""
        with self._lock:
            self._closed = True
            producer, self._producer = self._producer, None
        if producer is not None:
            close_producer(producer, self._close_timeout_s)


class _Ack:
    """A record's acknowledgement as kafka-python's ``FutureRecordMetadata`` gives it."""

    __slots__ = ("_future",)

    def __init__(self, future: Any) -> None:
        self._future = future

    def done(self) -> bool:
        return bool(self._future.is_done)

    def position(self, timeout: float | None) -> Position:
        meta = self._future.get(timeout=timeout)
        return Position(meta.partition, meta.offset)


def close_producer(producer: Any, timeout: float) -> None:
    """Close, giving pending records ``timeout`` seconds to be acknowledged or to expire.

    kafka-python 3.0.12's ``close()`` flushes first and raises from the flush while a batch
    is incomplete, before it reaches its own force-close, leaving the sender thread running;
    nothing public fails incomplete batches, and a batch retried for a deleted topic is not
    always expired within the delivery time-out (seen in the contract suite). Only then
    are those batches failed through the accumulator (their records' waits fail, loudly):
    this adapter's one private call, kept to the case no public one covers."""
    try:
        producer.close(timeout=timeout)
    except KafkaError as exc:
        log.warning("Kafka producer: records still pending at close are failed", extra={"error": why(exc)})
        producer._accumulator.abort_incomplete_batches()
        producer.close(timeout=0)
