"""A Kafka consumer-group member on confluent-kafka (librdkafka), chosen with
``LEDGER_KAFKA_CLIENT=confluent``: the same port, settings and rules as ``kafka_group``
(kafka-python, the reference), which this module mirrors.

Kafka's committed offsets never position the reader by themselves: on every assignment
the owner's callback answers with where to start, and the partitions are assigned at
those offsets (``assign`` with explicit offsets, never the committed ones); partitions it
could not answer for are not assigned at all, so nothing is read unpositioned.

The group uses the eager protocol with the ``range`` assignor, as kafka-python does: every
rebalance revokes the whole assignment and assigns a whole new one (so a group may mix both
clients while a deployment switches), and a new assignment is always set with ``assign``.
librdkafka runs the rebalance callbacks inside ``consume``/``poll``, on the caller's thread,
which is where the owner's callbacks run too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, Message, TopicPartition

from ledger.eventlog.base import EventLogUnavailable, StoredRecord
from ledger.eventlog.confluent import stored_record
from ledger.eventlog.confluent_producer import describe
from ledger.eventlog.group import GroupMember, OnAssigned, OnRevoked, member_timeouts
from ledger.settings import Settings

__all__ = ["ConfluentGroupMember"]

log = logging.getLogger(__name__)
_MiB = 1 << 20
METADATA_REFRESH_MS: Final = 5_000
POLL_SLICE_S: Final = 0.05
"""The longest one librdkafka poll waits before ``poll`` looks at a failed assignment."""


class ConfluentGroupMember(GroupMember):
    """One member of consumer group ``group_id`` on ``topic``."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        group_id: str,
        *,
        session_timeout_ms: int = 10_000,
        max_poll_interval_ms: int = 300_000,
        request_timeout_ms: int = 30_000,
        client_id: str = "task-ledger-projector",
        instance_id: str | None = None,
    ) -> None:
        self.topic, self.group, self.bootstrap_servers = topic, group_id, bootstrap_servers
        self._timeout_s = request_timeout_ms / 1000
        self._config: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers, "group.id": group_id, "client.id": client_id,
            "enable.auto.commit": False, "enable.auto.offset.store": False, "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "range",  # eager, as kafka-python's: see the module's docstring
            "session.timeout.ms": session_timeout_ms, "heartbeat.interval.ms": max(session_timeout_ms // 4, 100),
            "max.poll.interval.ms": max_poll_interval_ms, "socket.timeout.ms": request_timeout_ms,
            # what it fetches ahead, bounded (its default prefetch queue is 64 MB, and fetches
            # of 64 MiB came on top: 552 MB at the peak of a 1M backlog, 8 MiB fetches do)
            "fetch.max.bytes": 8 * _MiB, "max.partition.fetch.bytes": 2 * _MiB,
            "queued.max.messages.kbytes": 16 * 1024,
            "receive.message.max.bytes": 65 * _MiB,  # librdkafka wants it above fetch.max.bytes
            "allow.auto.create.topics": False,
            # partitions that appear after the member joined are assigned within seconds
            "topic.metadata.refresh.interval.ms": METADATA_REFRESH_MS,
            "logger": log,
        }  # fmt: skip
        if instance_id is not None:
            # static membership: a restarted member with the same id gets its partitions
            # back at once instead of waiting a session timeout for a rebalance
            self._config["group.instance.id"] = instance_id
        self._consumer: Consumer | None = None
        self._on_assigned: OnAssigned | None = None
        self._on_revoked: OnRevoked | None = None
        self._pending: set[int] = set()  # assigned by the group, not yet positioned (nor assigned locally)
        self._owned: set[int] = set()  # positioned and being read
        self._failure: Exception | None = None  # the owner's callback failed inside a librdkafka poll

    @classmethod
    def from_settings(cls, settings: Settings, topic: str, group: str, *, client_id: str,
                      instance_id: str | None = None) -> ConfluentGroupMember:  # fmt: skip
        return cls(settings.kafka_bootstrap_servers, topic, group, client_id=client_id, instance_id=instance_id,
                   **member_timeouts(settings))

    def start(self, on_assigned: OnAssigned, on_revoked: OnRevoked) -> None:
        self._on_assigned, self._on_revoked = on_assigned, on_revoked
        try:
            self._consumer = Consumer(self._config)
            self._consumer.subscribe([self.topic], on_assign=self._assign_cb, on_revoke=self._revoke_cb)
            self._await_partitions(self._consumer)
        except KafkaException as exc:
            self.close()
            raise EventLogUnavailable(f"Kafka at {self.bootstrap_servers} is not reachable: {describe(exc)}") from exc
        except EventLogUnavailable:
            self.close()
            raise

    def _await_partitions(self, consumer: Consumer) -> None:
        """Join (the first ``poll``) only once the topic's partitions are known: a leader
        that joins without them computes an empty assignment, which static members then
        inherit without a rebalance (see ``kafka_group``). A metadata request for one topic
        does not create it (``allow.auto.create.topics`` is off)."""
        deadline = time.monotonic() + self._timeout_s
        while True:
            found = consumer.list_topics(self.topic, timeout=max(0.1, deadline - time.monotonic()))
            described = found.topics.get(self.topic)
            if described is not None and described.error is None and described.partitions:
                return
            if time.monotonic() >= deadline:
                where = f"Kafka topic {self.topic!r} at {self.bootstrap_servers}"
                raise EventLogUnavailable(f"{where} has no partitions yet")
            time.sleep(0.1)

    # -- rebalances: librdkafka calls these inside consume()/poll(), on the caller's thread --

    def _assign_cb(self, consumer: Consumer, assigned: list[TopicPartition]) -> None:
        """Position the new assignment at once (fetching starts in the same poll). If the
        owner's callback fails, nothing is assigned locally (``assign([])`` keeps librdkafka
        from assigning at the committed offsets itself): the error comes out of ``poll``
        and the next poll asks again."""
        self._pending |= {tp.partition for tp in assigned}
        try:
            self._position_pending()
        except Exception as exc:  # raised from poll, out of librdkafka's call
            self._failure = exc
            consumer.assign([])

    def _revoke_cb(self, consumer: Consumer, revoked: list[TopicPartition]) -> None:
        assert self._on_revoked is not None
        partitions = {tp.partition for tp in revoked}
        self._pending -= partitions
        self._owned -= partitions
        consumer.unassign()
        try:
            self._on_revoked(partitions)
        except Exception:  # as kafka-python does with a listener that fails: logged, the rebalance goes on
            log.exception("on_revoked failed", extra={"topic": self.topic, "partitions": sorted(partitions)})

    def _position_pending(self) -> None:
        """Ask the owner where the pending partitions start and assign them there. Under
        the eager protocol an assignment is whole: nothing else is owned while any is pending."""
        assert self._on_assigned is not None and self._consumer is not None
        partitions = set(self._pending)
        positions = self._on_assigned(partitions)
        self._consumer.assign([
            TopicPartition(self.topic, p, positions.get(p, OFFSET_INVALID))
            for p in sorted(partitions)
        ])  # fmt: skip
        self._pending -= partitions
        self._owned |= partitions

    # -- reading -------------------------------------------------------------------------

    def poll(self, max_records: int, timeout_ms: int) -> list[StoredRecord]:
        """What is already fetched, else the first record to arrive (librdkafka's batch
        ``consume`` would wait out its whole timeout for ``max_records``; its ``poll``
        returns on one) and what came with it; or none after ``timeout_ms``, or as soon as
        an assignment could not be positioned."""
        consumer = self._started()
        if self._pending and self._failure is None:
            self._position_pending()  # the owner failed last time: asked again
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            messages = consumer.consume(max_records, 0)
            left = deadline - time.monotonic()
            if not messages and self._failure is None and left > 0:
                first = consumer.poll(min(left, POLL_SLICE_S))
                if first is not None:
                    messages = [first, *(consumer.consume(max_records - 1, 0) if max_records > 1 else [])]
            if messages or self._failure is not None or deadline <= time.monotonic():
                break
        if (failure := self._failure) is not None:
            self._failure = None
            if isinstance(failure, KafkaException):  # the owner asked Kafka where to start: asked again next poll
                raise EventLogUnavailable(f"Kafka at {self.bootstrap_servers}: positioning the assignment failed: "
                                          f"{describe(failure)}") from failure  # fmt: skip
            raise failure
        return self._records(messages)

    def _records(self, messages: list[Message]) -> list[StoredRecord]:
        """The port's records, sorted, of owned partitions only (a record fetched before a
        revocation in the same poll belongs to the next owner now). librdkafka reports a
        broker that is away in-band: with no broker at all it is ``EventLogUnavailable``,
        the rest it retries itself (logged)."""
        records, topic, unreachable = [], self.topic, None
        for message in messages:
            if (error := message.error()) is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                if error.code() == KafkaError._ALL_BROKERS_DOWN:
                    unreachable = error
                log.warning("Kafka consumer: %s", describe(error), extra={"topic": topic, "group": self.group})
                continue
            partition, offset = message.partition() or 0, message.offset() or 0
            if partition in self._owned:
                records.append(stored_record(message, topic, partition, offset))
        if unreachable is not None and not records:
            raise EventLogUnavailable(f"Kafka at {self.bootstrap_servers} is not reachable: {describe(unreachable)}")
        records.sort(key=lambda r: (r.partition, r.offset))
        return records

    def seek(self, positions: dict[int, int]) -> None:
        if self._consumer is None:
            return
        for partition, offset in positions.items():
            if partition in self._owned:  # a pending one is positioned by its owner
                with self._unavailable("seek"):
                    self._consumer.seek(TopicPartition(self.topic, partition, offset))

    def assigned(self) -> set[int]:
        return self._owned | self._pending if self._consumer is not None else set()

    # -- offsets -------------------------------------------------------------------------

    def end_offsets(self) -> dict[int, int]:
        return {p: high for p, (_, high) in self._watermarks().items()}

    def beginning_offsets(self) -> dict[int, int]:
        return {p: low for p, (low, _) in self._watermarks().items()}

    def _watermarks(self) -> dict[int, tuple[int, int]]:
        if self._consumer is None:
            return {}  # not started: nothing assigned, nothing to check yet
        consumer = self._consumer
        with self._unavailable("offsets"):
            described = consumer.list_topics(self.topic, timeout=self._timeout_s).topics.get(self.topic)
            partitions = sorted(described.partitions) if described is not None else []
            found = {
                p: consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=self._timeout_s, cached=False)
                for p in partitions
            }  # fmt: skip
        return {p: (int(marks[0]), int(marks[1])) for p, marks in found.items() if marks is not None}

    def committed(self, partitions: set[int]) -> dict[int, int]:
        consumer = self._started()
        with self._unavailable("committed offsets"):
            found = consumer.committed([TopicPartition(self.topic, p) for p in sorted(partitions)], self._timeout_s)
        # a partition's error is not "nothing committed" (that is an offset < 0): a coordinator
        # still loading after a restart answers so, and a caller would start it at the end
        failed = [(tp.partition, tp.error) for tp in found if tp.error is not None]
        if failed:
            detail = ", ".join(f"partition {partition}: {describe(error)}" for partition, error in failed)
            raise EventLogUnavailable(f"Kafka at {self.bootstrap_servers}: committed offsets unknown ({detail})")
        return {tp.partition: tp.offset for tp in found if tp.offset >= 0}

    def commit(self, positions: dict[int, int]) -> None:
        consumer, owned = self._started(), self.assigned()
        offsets = [TopicPartition(self.topic, p, o) for p, o in sorted(positions.items()) if p in owned]
        if not offsets:
            return
        with self._unavailable("commit"):
            answered = consumer.commit(offsets=offsets, asynchronous=False)
        failed = [(tp.partition, tp.error) for tp in answered or [] if tp.error is not None]
        if failed:
            detail = ", ".join(f"partition {partition}: {describe(error)}" for partition, error in failed)
            raise EventLogUnavailable(f"Kafka at {self.bootstrap_servers}: commit failed ({detail})")

    @contextmanager
    def _unavailable(self, what: str) -> Iterator[None]:
        """librdkafka's exceptions as ``EventLogUnavailable``, one line naming the call."""
        try:
            yield
        except KafkaException as exc:
            raise EventLogUnavailable(f"Kafka at {self.bootstrap_servers}: {what} failed: {describe(exc)}") from exc

    def _started(self) -> Consumer:
        if self._consumer is None:
            raise RuntimeError(f"group member of {self.group!r} on {self.topic!r}: start() first")
        return self._consumer

    def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                consumer.close()  # leaves the group; its revocation runs the owner's on_revoked
            except (KafkaException, RuntimeError) as exc:
                log.warning("closing the group member: %s", exc, extra={"topic": self.topic, "group": self.group})
        self._pending, self._owned, self._failure = set(), set(), None
