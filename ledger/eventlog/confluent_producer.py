"""The confluent-kafka log's append side: one idempotent librdkafka producer (acks=all, ordered
with 5 requests in flight), opened on the first append and replaced after a failed one.

librdkafka picks the partition with its ``murmur2_random`` partitioner (the producer's
configuration), the Java client's murmur2 for a key, as ``partitioning`` computes it, so
both Kafka adapters put a key in the same partition (in C: in Python it was half the cost
of an append). librdkafka reports each record's delivery through a callback that only runs
inside ``poll``/``flush``: a thread per producer polls, so a record handed over without
waiting is still acknowledged (and its ``Ack`` done) while nobody waits on it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from ledger.eventlog.base import AppendError, LogRecord, Position
from ledger.eventlog.pending import Acknowledgements, WaitingAppender

__all__ = ["ConfluentAppender", "Refused", "describe"]

log = logging.getLogger(__name__)


class Refused(Exception):
    """librdkafka's error for one record, named as librdkafka names it (MSG_SIZE_TOO_LARGE …)."""

    def __init__(self, error: KafkaError) -> None:
        super().__init__(describe(error))


def describe(error: KafkaError | KafkaException) -> str:
    """``MSG_SIZE_TOO_LARGE (Broker: Message size too large)``, not ``KafkaError{code=…}``."""
    if isinstance(error, KafkaException):
        if not error.args or not isinstance(error.args[0], KafkaError):
            return str(error)
        error = error.args[0]
    return f"{error.name()} ({error.str()})"


class ConfluentAppender(WaitingAppender):
    """Appends to ``topic`` through a producer built from ``config`` (librdkafka's names)."""

    def __init__(self, topic: str, config: dict[str, Any], *, delivery_timeout_s: float,
                 request_timeout_s: float) -> None:  # fmt: skip
        self.topic, self._config = topic, config
        self._delivery_timeout_s, self._block_s = delivery_timeout_s, request_timeout_s
        # every record handed over is delivered or expired within the delivery time-out
        self._close_timeout_s = delivery_timeout_s + request_timeout_s
        self._lock = threading.Lock()  # guards the producer and the closed flag
        self._producer: _Polled | None = None
        self._closed = False

    def _get_producer(self) -> _Polled:
        with self._lock:
            if self._closed:
                raise AppendError(f"ConfluentEventLog for topic {self.topic!r} is closed")
            if self._producer is None:
                self._producer = _Polled(Producer(self._config))
            return self._producer

    def append_nowait(self, records: Sequence[LogRecord]) -> Acknowledgements:
        """Records are batched (``linger.ms``/``batch.size``) and sent by librdkafka's threads."""
        polled = self._get_producer()
        producer, topic = polled.producer, self.topic
        batch = _Batch(len(records))
        acks: list[_Ack] = []
        cause: BaseException | None = None
        produce, add = producer.produce, acks.append
        headers: Any  # librdkafka's list of (name, str | bytes | None): ours is a narrower list
        try:
            for record in records:
                key = record.key.encode()
                ack = _Ack(batch)
                headers = list(record.headers) if record.headers else None
                try:
                    produce(topic, record.value, key, on_delivery=ack.report, headers=headers)
                except BufferError:  # the local queue is full: wait for room, as kafka-python would
                    self._produce_when_room(producer, topic, record.value, key, ack.report, headers)
                add(ack)
        except KafkaException as exc:  # too large for message.max.bytes, unknown partition …
            cause = Refused(exc.args[0]) if exc.args and isinstance(exc.args[0], KafkaError) else exc
        except Exception as exc:  # local queue still full, bad type: none silently lost
            cause = exc
        batch.expect(len(acks))
        where = f"Kafka topic {topic!r}"
        return Acknowledgements(where, acks, len(records), cause, lambda: self._retire(polled))

    def _produce_when_room(self, producer: Producer, topic: str, value: bytes, key: bytes,
                           report: Callable[[KafkaError | None, Message], None], headers: Any) -> None:  # fmt: skip
        """``produce`` once the local queue has room, waiting up to the request time-out
        (kafka-python's ``max_block_ms``); then the ``BufferError`` is the append's cause."""
        deadline = time.monotonic() + self._block_s
        while True:
            producer.poll(0.01)  # serve delivery reports: they free the queue
            try:
                producer.produce(topic, value, key, on_delivery=report, headers=headers)
                return
            except BufferError:
                if time.monotonic() > deadline:
                    raise

    def _retire(self, polled: _Polled) -> None:
        """Replace the producer after a failed append (an idempotent producer may be left in a
        fatal state by a refused batch), closing the old one in the background so the caller
        who saw the failure does not wait for its other records."""
        with self._lock:
            if self._producer is not polled:
                return  # already replaced, or closed
            self._producer = None
        closing = threading.Thread(target=polled.close, args=(self._close_timeout_s,),
                                   name="ledger-retired-producer", daemon=True)  # fmt: skip
        closing.start()

    def flush(self, timeout: float | None = None) -> None:
        """Send everything queued (linger skipped) and wait until it is delivered or failed."""
        polled = self._producer
        if polled is None:
            return
        try:
            left = polled.producer.flush(-1 if timeout is None else timeout)
        except RuntimeError:  # closed meanwhile (retired): its close settled every record
            return
        if left:
            raise AppendError(f"Kafka topic {self.topic!r}: flush left {left} records unacknowledged after {timeout} s")

    def close(self) -> None:
        """Flush and close the producer; later appends raise ``AppendError``. Idempotent."""
        with self._lock:
            self._closed = True
            polled, self._producer = self._producer, None
        if polled is not None:
            polled.close(self._close_timeout_s)


class _Polled:
    """A producer and the thread that serves its delivery reports."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="ledger-delivery-reports", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.1)

    def close(self, timeout: float) -> None:
        """Give pending records ``timeout`` seconds; then purge the rest, whose waits fail
        (``_PURGE_QUEUE``/``_PURGE_INFLIGHT``) loudly rather than hang."""
        try:
            left = self.producer.flush(timeout)
            if left:
                log.warning("Kafka producer: records still pending at close are failed", extra={"pending": left})
                self.producer.purge()
                self.producer.flush(1.0)  # serve the purged records' reports
        finally:
            self._stop.set()
            self._thread.join()
            self.producer.close()


class _Batch:
    """The records of one append: one event for all their reports, set when the last comes.
    Reports come from the polling thread and from a ``flush`` in the caller's: hence the lock."""

    __slots__ = ("_expected", "_lock", "_reported", "all_reported")

    def __init__(self, expected: int) -> None:
        self._expected, self._reported = expected, 0
        self._lock = threading.Lock()
        self.all_reported = threading.Event()

    def reported(self) -> None:
        with self._lock:
            self._reported += 1
            if self._reported >= self._expected:
                self.all_reported.set()

    def expect(self, handed_over: int) -> None:
        """Only ``handed_over`` records reached the producer: their reports complete the batch."""
        with self._lock:
            self._expected = handed_over
            if self._reported >= handed_over:
                self.all_reported.set()


class _Ack:
    """A record's delivery report as librdkafka's ``on_delivery`` callback gives it."""

    __slots__ = ("_batch", "_error", "_position")

    def __init__(self, batch: _Batch) -> None:
        self._batch = batch
        self._position: Position | None = None
        self._error: KafkaError | None = None

    def report(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self._position = Position(message.partition() or 0, message.offset() or 0)
        else:
            self._error = error
        self._batch.reported()

    def done(self) -> bool:
        return self._position is not None or self._error is not None

    def position(self, timeout: float | None) -> Position:
        if not self.done() and not self._batch.all_reported.wait(timeout):
            raise TimeoutError(f"no delivery report within {timeout} s")
        if self._error is not None:
            raise Refused(self._error)
        assert self._position is not None, "a report is either a position or an error"
        return self._position
