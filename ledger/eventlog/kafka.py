"""The Kafka event log: the log of record in production (kafka-python, the reference client).

With ``kafka_producer`` (the append side) and ``kafka_group`` (group membership) it is the
only code that imports ``kafka``: the layer contract in pyproject.toml holds that. Reads use
consumers with manual assignment (no group): reading is replay; group membership and
committed offsets are ``kafka_group``'s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from functools import partial
from typing import Any, TypeVar

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
)

from ledger.eventlog.base import (
    EventLog,
    EventLogUnavailable,
    LogRecord,
    PendingAppend,
    Position,
    Start,
    StoredRecord,
)
from ledger.eventlog.kafka_producer import Appender
from ledger.eventlog.partitioning import partition_for_key
from ledger.settings import Settings

__all__ = ["KafkaEventLog", "stored_record"]

_MiB = 1 << 20
_UNKNOWN_TOPIC = 3  # Kafka error code UNKNOWN_TOPIC_OR_PARTITION
_UNREACHABLE = (KafkaTimeoutError, KafkaConnectionError, OSError)
_T = TypeVar("_T")


class KafkaEventLog(EventLog):
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
        producer_config: dict[str, Any] = {
            "acks": "all", "enable_idempotence": True, "retries": 2_147_483_647,
            "max_in_flight_requests_per_connection": 5, "compression_type": compression,
            "linger_ms": linger_ms, "batch_size": batch_size, "max_request_size": max_request_size,
            "delivery_timeout_ms": delivery_timeout_ms, "max_block_ms": request_timeout_ms,
            "metrics_enabled": False,
        }  # fmt: skip
        self._meta_lock = threading.Lock()  # guards _meta and the closed flag: never blocks appends
        self._meta: Any = None  # consumer for offset look-ups
        self._closed = False
        self.partitions = self._ensure_topic(partitions, replication_factor)
        self._tps = [TopicPartition(topic, p) for p in range(self.partitions)]
        self._appender = Appender(
            topic, self.partitions, partial(self._connect, KafkaProducer, "producer", **producer_config),
            delivery_timeout_s=delivery_timeout_ms / 1000, request_timeout_s=request_timeout_ms / 1000,
        )  # fmt: skip

    @classmethod
    def from_settings(cls, settings: Settings, topic: str | None = None) -> KafkaEventLog:
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

    # -- connections ---------------------------------------------------------------------

    @contextmanager
    def _reachable(self, what: str) -> Iterator[None]:
        """Turn kafka-python's bootstrap/time-out errors into EventLogUnavailable."""
        try:
            yield
        except _UNREACHABLE as exc:
            raise EventLogUnavailable(
                f"Kafka at {self.bootstrap_servers} is not reachable: {what} got no answer "
                f"within {self._request_timeout_ms} ms ({exc})"
            ) from exc

    def _connect(self, factory: Callable[..., _T], what: str, **config: Any) -> _T:
        with self._reachable(f"{what} for topic {self.topic!r}"):
            return factory(
                bootstrap_servers=self.bootstrap_servers,
                client_id=self.client_id,
                request_timeout_ms=self._request_timeout_ms,
                bootstrap_timeout_ms=self._request_timeout_ms,
                **config,
            )

    def _consumer(self, **config: Any) -> Any:
        """A group-less consumer tuned for bulk reads (big fetches, many records per poll)."""
        return self._connect(
            KafkaConsumer, "consumer", group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", allow_auto_create_topics=False, metrics_enabled=False,
            fetch_max_bytes=64 * _MiB, max_partition_fetch_bytes=16 * _MiB,
            max_poll_records=20_000, receive_buffer_bytes=4 * _MiB, **config,
        )  # fmt: skip

    def _ensure_topic(self, partitions: int, replication_factor: int) -> int:
        """Create the topic if missing (tolerating a concurrent creator); its partition count."""
        admin = self._connect(KafkaAdminClient, "admin client")
        try:
            with self._reachable(f"creating topic {self.topic!r}"):
                count = self._partition_count(admin)
                if count is None:
                    spec = {"num_partitions": partitions, "replication_factor": replication_factor}
                    with suppress(TopicAlreadyExistsError):  # a concurrent creator won: use it
                        admin.create_topics({self.topic: spec}, timeout_ms=self._request_timeout_ms)
                    admin.wait_for_topics([self.topic], timeout_ms=self._request_timeout_ms)
                    count = self._partition_count(admin)
        finally:
            admin.close()
        if count is None:
            raise EventLogUnavailable(f"Kafka topic {self.topic!r} did not appear after creation")
        return count

    def _partition_count(self, admin: Any) -> int | None:
        [described] = admin.describe_topics([self.topic])
        if described["error_code"] == _UNKNOWN_TOPIC:
            return None
        if described["error_code"]:
            raise EventLogUnavailable(
                f"Kafka topic {self.topic!r} cannot be described: error {described['error_code']}"
            )
        return len(described["partitions"])

    # -- appending -----------------------------------------------------------------------

    def append(self, records: Sequence[LogRecord]) -> list[Position]:
        return self._appender.append(records)

    def append_nowait(self, records: Sequence[LogRecord]) -> PendingAppend:
        return self._appender.append_nowait(records)

    def flush(self, timeout: float | None = None) -> None:
        self._appender.flush(timeout)

    # -- reading -------------------------------------------------------------------------

    def _read_ranges(self, ranges: dict[int, tuple[int, int]]) -> Iterator[StoredRecord]:
        if not ranges:
            return
        consumer = self._consumer(fetch_max_wait_ms=100)
        try:
            tps = self._assign(consumer, {p: first for p, (first, _) in ranges.items()})
            stops = {tp: ranges[tp.partition][1] for tp in tps}
            idle_until = time.monotonic() + self._request_timeout_ms / 1000
            while stops:
                polled = consumer.poll(timeout_ms=self._poll_timeout_ms)
                for tp, batch in polled.items():
                    last = stops.get(tp)
                    for raw in batch:
                        if last is None or raw.offset >= last:
                            break
                        yield stored_record(raw)
                if polled:
                    idle_until = time.monotonic() + self._request_timeout_ms / 1000
                for tp in [tp for tp, last in stops.items() if consumer.position(tp) >= last]:
                    consumer.pause(tp)
                    del stops[tp]
                if stops and time.monotonic() > idle_until:
                    raise EventLogUnavailable(
                        f"Kafka at {self.bootstrap_servers}: reading {self.topic!r} made no "
                        f"progress for {self._request_timeout_ms} ms (still to read: {stops})"
                    )
        finally:
            consumer.close(autocommit=False)

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
        consumer = self._consumer(fetch_max_wait_ms=max(1, min(timeout_ms, 500)))
        try:
            self._assign(consumer, begin)
            while not stop_event.is_set():
                polled = consumer.poll(timeout_ms=timeout_ms)
                yield [stored_record(raw) for batch in polled.values() for raw in batch]
        finally:
            consumer.close(autocommit=False)

    def _assign(self, consumer: Any, offsets: Mapping[int, int]) -> list[Any]:
        tps = [self._tps[p] for p in offsets]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, offsets[tp.partition])
        return tps

    # -- offsets -------------------------------------------------------------------------

    def _offsets(self, what: str, call: Callable[[Any], dict[Any, Any]]) -> dict[Any, Any]:
        with self._meta_lock:
            if self._closed:
                raise EventLogUnavailable(f"KafkaEventLog for topic {self.topic!r} is closed")
            if self._meta is None:
                self._meta = self._consumer()
            with self._reachable(f"{what} of {self.topic!r}"):
                return call(self._meta)

    def end_offsets(self) -> dict[int, int]:
        found = self._offsets("end offsets", lambda c: c.end_offsets(self._tps))
        return {tp.partition: offset for tp, offset in found.items()}

    def beginning_offsets(self) -> dict[int, int]:
        found = self._offsets("beginning offsets", lambda c: c.beginning_offsets(self._tps))
        return {tp.partition: offset for tp, offset in found.items()}

    def offsets_for_time(self, timestamp_ms: int) -> dict[int, int]:
        query = dict.fromkeys(self._tps, timestamp_ms)
        found = self._offsets("offsets for time", lambda c: c.offsets_for_times(query))
        hits = {tp.partition: hit.offset for tp, hit in found.items() if hit is not None}
        if len(hits) < self.partitions:
            hits = {**self.end_offsets(), **hits}
        return hits

    def partition_for(self, key: str) -> int:
        return partition_for_key(key.encode(), self.partitions)

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        with self._meta_lock:
            if self._closed:
                return
            self._closed = True
            meta, self._meta = self._meta, None
        try:
            self._appender.close()
        finally:
            if meta is not None:
                meta.close(autocommit=False)

    def delete_topic(self) -> None:
        """Delete this log's topic (tests and tools); a missing topic is not an error."""
        admin = self._connect(KafkaAdminClient, "admin client")
        try:
            with self._reachable(f"deleting topic {self.topic!r}"):
                admin.delete_topics([self.topic], raise_errors=False)
        finally:
            admin.close()


def stored_record(raw: Any) -> StoredRecord:
    """kafka-python's ConsumerRecord as the port's StoredRecord (the timestamp is the
    producer's CreateTime, or the broker's LogAppendTime if the topic is configured so)."""
    headers = tuple(raw.headers) if raw.headers else ()
    return StoredRecord(
        raw.topic, raw.partition, raw.offset, raw.key, raw.value, headers, raw.timestamp
    )
