"""The Kafka event log on confluent-kafka (librdkafka): the fast client, chosen with
``LEDGER_KAFKA_CLIENT=confluent``; kafka-python's ``kafka.py`` stays the reference adapter.

The same port, the same settings and the same behaviour as ``KafkaEventLog`` (the one
contract suite holds both): a key lands in the same partition under either client, and
librdkafka's errors become the port's (``EventLogUnavailable`` when the broker does not
answer, ``AppendError`` for a record not acknowledged). With ``confluent_producer`` and
``confluent_group`` it is the only code that imports ``confluent_kafka``. Reads use consumers
with manual assignment: no group joins, nothing is committed (consumer groups:
``confluent_group``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TypeVar, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from ledger.eventlog.base import (
    EventLog,
    EventLogUnavailable,
    Headers,
    LogRecord,
    PendingAppend,
    Position,
    Start,
    StoredRecord,
)
from ledger.eventlog.confluent_producer import ConfluentAppender, describe
from ledger.eventlog.partitioning import partition_for_key
from ledger.settings import Settings

__all__ = ["ConfluentEventLog", "stored_record"]

log = logging.getLogger(__name__)

_MiB = 1 << 20
_FETCH_MAX = 64 * _MiB
_BATCH = 20_000  # most records one consume() returns
# librdkafka's codes for "no broker answered": the port's EventLogUnavailable
_UNREACHABLE = {
    KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT, KafkaError._RESOLVE,
    KafkaError._TIMED_OUT_QUEUE, KafkaError.REQUEST_TIMED_OUT, KafkaError.NETWORK_EXCEPTION,
}  # fmt: skip
# a partition without a leader for now (a new topic, a broker restarting), or whose leader
# changed under the client (a restarted broker's newer leader epoch): asked again
_STALE_EPOCH = {KafkaError.FENCED_LEADER_EPOCH, KafkaError.UNKNOWN_LEADER_EPOCH}
_MOVING = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, *_STALE_EPOCH}
_T = TypeVar("_T")


class ConfluentEventLog(EventLog):
    """EventLog on one Kafka topic, created with ``partitions`` if missing.

    ``partitions`` becomes the topic's real partition count when the topic already exists.
    """

    def __init__(
        self,
        bootstrap_servers: str = "127.0.0.1:9092",
        topic: str = "task-events",
        *,
        partitions: int = 6,
        replication_factor: int = 1,
        compression: str | None = "lz4",
        linger_ms: int = 5,
        batch_size: int = 262_144,
        request_timeout_ms: int = 30_000,
        delivery_timeout_ms: int = 60_000,
        poll_timeout_ms: int = 500,
        client_id: str = "task-ledger",
        max_request_size: int = 8 * _MiB,
    ) -> None:
        self.topic, self.bootstrap_servers, self.client_id = topic, bootstrap_servers, client_id
        self._request_timeout_ms, self._poll_timeout_ms = request_timeout_ms, poll_timeout_ms
        self._common: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers, "client.id": client_id,
            "socket.timeout.ms": request_timeout_ms, "logger": log,
        }  # fmt: skip
        producer_config = {
            **self._common, "acks": "all", "enable.idempotence": True,
            "max.in.flight.requests.per.connection": 5, "compression.type": compression or "none",
            "linger.ms": linger_ms, "batch.size": min(batch_size, max_request_size),
            "message.max.bytes": max_request_size,  # librdkafka's max.request.size: bigger records are refused
            "delivery.timeout.ms": delivery_timeout_ms, "request.timeout.ms": request_timeout_ms,
            "queue.buffering.max.messages": 1_000_000, "queue.buffering.max.kbytes": 128 * 1024,
            "partitioner": "murmur2_random",  # the Java client's (and kafka-python's) for a key: see partitioning
        }  # fmt: skip
        self._lock = threading.Lock()  # guards the closed flag: never blocks appends
        self._closed = False
        self._admin = AdminClient(dict(self._common))
        self.partitions = self._ensure_topic(partitions, replication_factor)
        self._tps = [TopicPartition(topic, p) for p in range(self.partitions)]
        self._appender = ConfluentAppender(
            topic, producer_config,
            delivery_timeout_s=delivery_timeout_ms / 1000, request_timeout_s=request_timeout_ms / 1000,
        )  # fmt: skip

    @classmethod
    def from_settings(cls, settings: Settings, topic: str | None = None) -> ConfluentEventLog:
        """The log configured by ``settings``; ``topic`` overrides it (e.g. ``<topic>.dlq``)."""
        return cls(
            settings.kafka_bootstrap_servers,
            topic or settings.topic,
            partitions=settings.partitions,
            replication_factor=settings.replication_factor,
            compression=None if settings.compression == "none" else str(settings.compression),
            linger_ms=settings.linger_ms,
            batch_size=settings.batch_size,
            request_timeout_ms=settings.request_timeout_ms,
            delivery_timeout_ms=settings.delivery_timeout_ms,
            poll_timeout_ms=settings.consumer_poll_timeout_ms,
        )

    # -- the broker's answers ------------------------------------------------------------

    @contextmanager
    def _reachable(self, what: str) -> Iterator[None]:
        """Turn librdkafka's transport and time-out errors into EventLogUnavailable."""
        try:
            yield
        except KafkaException as exc:
            error = _error(exc)
            if error is None or not (error.code() in _UNREACHABLE | _MOVING or error.retriable()):
                raise
            raise EventLogUnavailable(
                f"Kafka at {self.bootstrap_servers} is not reachable: {what} got no answer "
                f"within {self._request_timeout_ms} ms ({describe(error)})"
            ) from exc
        finally:
            self._admin.poll(0)  # forward librdkafka's log lines to ``logging``

    def _answer(self, future: Any) -> Any:
        return future.result(timeout=self._request_timeout_ms / 1000 + 5)

    def _again_while_moving(self, call: Callable[[], _T]) -> _T:
        """``call``, asked again while a partition has no leader, up to the request time-out."""
        deadline = time.monotonic() + self._request_timeout_ms / 1000
        while True:
            try:
                return call()
            except KafkaException as exc:
                error = _error(exc)
                if error is None or error.code() not in _MOVING or time.monotonic() > deadline:
                    raise
                if error.code() in _STALE_EPOCH:  # the cached leader epoch is a restarted broker's
                    with suppress(KafkaException):  # old one: librdkafka keeps sending it until the
                        self._admin.list_topics(self.topic, timeout=1.0)  # metadata is asked again
            time.sleep(0.05)

    def _ensure_topic(self, partitions: int, replication_factor: int) -> int:
        """Create the topic if missing (tolerating a concurrent creator); its partition count."""
        with self._reachable(f"creating topic {self.topic!r}"):
            count = self._partition_count()
            if count is None:
                spec = NewTopic(self.topic, partitions, replication_factor)
                [created] = self._admin.create_topics([spec], request_timeout=self._request_timeout_ms / 1000).values()
                try:
                    self._answer(created)
                except KafkaException as exc:
                    if (error := _error(exc)) is None or error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                        raise  # a concurrent creator won: use its topic
                deadline = time.monotonic() + self._request_timeout_ms / 1000
                while (count := self._partition_count(led=True)) is None and time.monotonic() < deadline:
                    time.sleep(0.05)  # the new topic's partitions have no leader yet
        if count is None:
            raise EventLogUnavailable(f"Kafka topic {self.topic!r} did not appear after creation")
        return count

    def _partition_count(self, *, led: bool = False) -> int | None:
        """None while the topic is missing (or, ``led``, while a partition has no leader).
        Described, not asked for in a metadata request, which could auto-create it."""
        found = self._admin.describe_topics(
            TopicCollection([self.topic]), request_timeout=self._request_timeout_ms / 1000
        )
        try:
            partitions = self._answer(found[self.topic]).partitions
        except KafkaException as exc:
            error = _error(exc)
            if error is not None and error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                return None
            if error is None or error.code() in _UNREACHABLE or error.retriable():
                raise
            raise EventLogUnavailable(f"Kafka topic {self.topic!r} cannot be described: {describe(exc)}") from exc
        if led and any(partition.leader is None for partition in partitions):
            return None
        return len(partitions)

    # -- appending -----------------------------------------------------------------------

    def append(self, records: Sequence[LogRecord]) -> list[Position]:
        return self._appender.append(records)

    def append_nowait(self, records: Sequence[LogRecord]) -> PendingAppend:
        return self._appender.append_nowait(records)

    def flush(self, timeout: float | None = None) -> None:
        self._appender.flush(timeout)

    # -- reading -------------------------------------------------------------------------

    def _consumer(self, fetch_wait_ms: int, offsets: Mapping[int, int]) -> Consumer:
        """A consumer assigned to ``offsets``, tuned for bulk reads. librdkafka wants a
        ``group.id``; nothing joins that group or commits to it (manual assignment only)."""
        consumer = Consumer({
            **self._common, "group.id": f"{self.client_id}-reader", "enable.auto.commit": False,
            "enable.auto.offset.store": False, "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": fetch_wait_ms, "fetch.max.bytes": _FETCH_MAX,
            "max.partition.fetch.bytes": 16 * _MiB, "receive.message.max.bytes": _FETCH_MAX + _MiB,
        })  # fmt: skip
        consumer.assign([TopicPartition(self.topic, p, offset) for p, offset in offsets.items()])
        return consumer

    def _read_ranges(self, ranges: dict[int, tuple[int, int]]) -> Iterator[StoredRecord]:
        if not ranges:
            return
        consumer = self._consumer(100, {p: first for p, (first, _) in ranges.items()})
        try:
            stops, topic = {p: last for p, (_, last) in ranges.items()}, self.topic
            idle_until = time.monotonic() + self._request_timeout_ms / 1000
            while stops:
                polled = self._consume(consumer, self._poll_timeout_ms)
                for message in polled:
                    partition, offset = message.partition() or 0, message.offset() or 0
                    last = stops.get(partition)
                    if last is None or offset >= last:
                        continue
                    yield stored_record(message, topic, partition, offset)
                    if offset + 1 >= last:
                        consumer.pause([TopicPartition(self.topic, partition)])
                        del stops[partition]
                if polled:
                    idle_until = time.monotonic() + self._request_timeout_ms / 1000
                if stops and time.monotonic() > idle_until:
                    raise EventLogUnavailable(
                        f"Kafka at {self.bootstrap_servers}: reading {self.topic!r} made no "
                        f"progress for {self._request_timeout_ms} ms (still to read: {stops})"
                    )
        finally:
            consumer.close()

    def subscribe(
        self,
        start: Start = "end",
        *,
        stop_event: threading.Event | None = None,
        poll_timeout_ms: int | None = None,
    ) -> Iterator[list[StoredRecord]]:
        """Follow every partition from ``start`` (resolved now, so nothing appended between
        this call and the first ``next`` is missed). ``stop_event`` is checked between polls."""
        begin = self.resolve(start)
        timeout = self._poll_timeout_ms if poll_timeout_ms is None else poll_timeout_ms
        return self._follow(begin, stop_event or threading.Event(), timeout)

    def _follow(
        self, begin: dict[int, int], stop_event: threading.Event, timeout_ms: int
    ) -> Iterator[list[StoredRecord]]:
        consumer, topic = self._consumer(max(1, min(timeout_ms, 500)), begin), self.topic
        try:
            while not stop_event.is_set():
                yield [
                    stored_record(message, topic, message.partition() or 0, message.offset() or 0)
                    for message in self._consume(consumer, timeout_ms)
                ]
        finally:
            consumer.close()

    def _consume(self, consumer: Consumer, timeout_ms: int) -> list[Message]:
        """One poll's records; errors librdkafka reports in-band (it retries them itself:
        a broker away, a partition moving) are logged, and a read that stalls on them
        ends as EventLogUnavailable above."""
        polled = consumer.consume(_BATCH, timeout_ms / 1000)
        if not any(message.error() for message in polled):
            return polled
        for message in polled:
            if (error := message.error()) is not None:
                log.warning("Kafka consumer: %s", describe(error), extra={"topic": self.topic})
        return [message for message in polled if message.error() is None]

    # -- offsets -------------------------------------------------------------------------

    def _offsets(self, what: str, spec: Callable[[], OffsetSpec]) -> dict[int, int]:
        with self._lock:
            if self._closed:
                raise EventLogUnavailable(f"ConfluentEventLog for topic {self.topic!r} is closed")

        def ask() -> dict[int, int]:
            asked = self._admin.list_offsets(
                {tp: spec() for tp in self._tps}, request_timeout=self._request_timeout_ms / 1000
            )
            return {tp.partition: self._answer(future).offset for tp, future in asked.items()}

        with self._reachable(f"{what} of {self.topic!r}"):
            return self._again_while_moving(ask)

    def end_offsets(self) -> dict[int, int]:
        return self._offsets("end offsets", OffsetSpec.latest)

    def beginning_offsets(self) -> dict[int, int]:
        return self._offsets("beginning offsets", OffsetSpec.earliest)

    def offsets_for_time(self, timestamp_ms: int) -> dict[int, int]:
        found = self._offsets("offsets for time", lambda: OffsetSpec.for_timestamp(timestamp_ms))
        hits = {partition: offset for partition, offset in found.items() if offset >= 0}
        if len(hits) < self.partitions:  # -1: no record that late in that partition
            hits = {**self.end_offsets(), **hits}
        return hits

    def partition_for(self, key: str) -> int:
        return partition_for_key(key.encode(), self.partitions)

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._appender.close()

    def delete_topic(self) -> None:
        """Delete this log's topic (tests and tools); a missing topic is not an error."""
        with self._reachable(f"deleting topic {self.topic!r}"):
            [deleted] = self._admin.delete_topics(
                [self.topic], request_timeout=self._request_timeout_ms / 1000
            ).values()
            try:
                self._answer(deleted)
            except KafkaException as exc:
                if (error := _error(exc)) is None or error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise


def _error(exc: KafkaException) -> KafkaError | None:
    """The KafkaError a KafkaException carries (its first argument), if any."""
    error = exc.args[0] if exc.args else None
    return error if isinstance(error, KafkaError) else None


def stored_record(message: Message, topic: str, partition: int, offset: int) -> StoredRecord:
    """librdkafka's Message as the port's StoredRecord (the timestamp is the producer's
    CreateTime, or the broker's LogAppendTime if the topic is configured so)."""
    kind, timestamp = message.timestamp()
    headers = message.headers()  # a consumed record's: a list of (name, bytes) pairs, or None
    return StoredRecord(
        topic, partition, offset, message.key(),
        message.value(), cast(Headers, tuple(headers)) if headers else (), timestamp if kind else 0,
    )  # fmt: skip
