"""A Kafka consumer-group member (``GroupMember``): several projector or subscriber
processes in one group share a topic's partitions, and a rebalance hands partitions over.

Kafka's committed offsets never position the reader by themselves: on every assignment
the owner's callback answers with where to start (a projector: the offsets stored in the
view store, same transaction as the rows; a subscriber: ``committed``), and the consumer
seeks there.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError

from ledger.eventlog.base import EventLogUnavailable, StoredRecord
from ledger.eventlog.group import GroupMember, OnAssigned, OnRevoked, member_timeouts
from ledger.eventlog.kafka import stored_record
from ledger.settings import Settings

log = logging.getLogger(__name__)
_MiB = 1 << 20


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, source: KafkaGroupMember) -> None:
        self.source = source

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.source._revoked({tp.partition for tp in revoked})

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.source._assigned({tp.partition for tp in assigned})


METADATA_MAX_AGE_MS: Final = 5_000
POLL_SLICE_MS: Final = 50
"""The longest one kafka-python poll waits before ``poll`` looks for a new assignment."""


class KafkaGroupMember(GroupMember):
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
        self._config: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "group_id": group_id,
            "client_id": client_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": max(session_timeout_ms // 4, 100),
            "max_poll_interval_ms": max_poll_interval_ms,
            "request_timeout_ms": request_timeout_ms,
            # a fetch of 8 MiB is ~20,000 events, several batches: bigger ones only raised
            # the peak (a 1M backlog: 281 MB in the first 60,000 events at 64/16 MiB, 151
            # MB at 8/2), not the rate
            "fetch_max_bytes": 8 * _MiB,
            "max_partition_fetch_bytes": 2 * _MiB,
            "allow_auto_create_topics": False,
            # a member that joins while its topic's partitions are not yet in its metadata
            # (a topic created a moment ago, partitions added later) is assigned nothing
            # until the metadata is refreshed: every 5 s, not the client's default 5 min
            "metadata_max_age_ms": METADATA_MAX_AGE_MS,
            "metrics_enabled": False,
            # static membership: a restarted member with the same id gets its partitions
            # back at once instead of waiting a session timeout for a rebalance
            "group_instance_id": instance_id,
        }
        self._consumer: Any = None
        self._on_assigned: OnAssigned | None = None
        self._on_revoked: OnRevoked | None = None
        self._pending: set[int] = set()

    @classmethod
    def from_settings(cls, settings: Settings, topic: str, group: str, *, client_id: str,
                      instance_id: str | None = None) -> KafkaGroupMember:  # fmt: skip
        return cls(settings.kafka_bootstrap_servers, topic, group, client_id=client_id, instance_id=instance_id,
                   **member_timeouts(settings))

    def start(self, on_assigned: OnAssigned, on_revoked: OnRevoked) -> None:
        self._on_assigned, self._on_revoked = on_assigned, on_revoked
        try:
            self._consumer = KafkaConsumer(**self._config)
            self._consumer.subscribe([self.topic], listener=_Listener(self))
            self._await_partitions()
        except (KafkaError, OSError) as exc:
            self.close()
            raise EventLogUnavailable(f"Kafka at {self.bootstrap_servers} is not reachable: {exc!r}") from exc
        except EventLogUnavailable:
            self.close()
            raise

    def _await_partitions(self) -> None:
        """Join (the first ``poll``) only once the group coordinator knows the topic's
        partitions. A member that joins without them (a topic created a moment ago) computes,
        as the group's leader, an empty assignment; with static membership a restarted member
        then inherits it without a rebalance, and the group owns nothing for good.

        The coordinator learns them only from a metadata update that arrives after
        ``subscribe``, hence ``topics()`` (always a round trip) rather than the cached
        ``partitions_for_topic`` alone. Joined before that update, kafka-python 3.0.12 rejoins
        when it arrives, and a leader's rejoin outliving a short ``poll`` loses its
        assignment: the member then owns nothing, forever (seen in 3 of 15 runs)."""
        deadline = time.monotonic() + self._config["request_timeout_ms"] / 1000
        while self.topic not in self._consumer.topics() or not self._consumer.partitions_for_topic(self.topic):
            if time.monotonic() >= deadline:
                where = f"Kafka topic {self.topic!r} at {self.bootstrap_servers}"
                raise EventLogUnavailable(f"{where} has no partitions yet")
            time.sleep(0.1)

    def _assigned(self, partitions: set[int]) -> None:
        """In kafka-python's IO thread, which must not block: only remember the partitions
        and pause them; ``poll`` positions them (asking the owner where) before reading."""
        self._pending |= partitions
        self._consumer.pause(*self._tps(partitions))

    def _revoked(self, partitions: set[int]) -> None:
        assert self._on_revoked is not None
        self._pending -= partitions
        self._on_revoked(partitions)

    def _tps(self, partitions: set[int]) -> list[TopicPartition]:
        return [TopicPartition(self.topic, p) for p in sorted(partitions)]

    def poll(self, max_records: int, timeout_ms: int) -> list[StoredRecord]:
        """Records, or none after ``timeout_ms``, or none as soon as partitions are assigned:
        they arrive paused, and kafka-python's poll would sit out its whole timeout on them
        (every event emitted meanwhile waited that long: the first 500 ms of a projector);
        so it polls in short slices and returns to position them at once."""
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            left_ms = max(0, int((deadline - time.monotonic()) * 1000))
            polled = self._consumer.poll(timeout_ms=min(left_ms, POLL_SLICE_MS), max_records=max_records,
                                         update_offsets=True)  # fmt: skip
            if polled or self._pending or left_ms <= POLL_SLICE_MS:
                break
        records = [stored_record(raw) for tp, batch in polled.items() if tp.partition not in self._pending
                   for raw in batch]  # fmt: skip
        if self._pending:
            self._position_pending()
        records.sort(key=lambda r: (r.partition, r.offset))
        return records

    def _position_pending(self) -> None:
        """Ask the owner where to start; if that fails (a backend away) the partitions stay
        pending and paused, and the next poll asks again: nothing is read unpositioned."""
        assert self._on_assigned is not None
        partitions = set(self._pending)
        positions = self._on_assigned(partitions)
        self._pending -= partitions
        self.seek(positions)
        self._consumer.resume(*self._tps(partitions))

    def seek(self, positions: dict[int, int]) -> None:
        if self._consumer is None:
            return
        owned = {tp.partition for tp in self._consumer.assignment()}
        for partition, offset in positions.items():
            if partition in owned:
                self._consumer.seek(TopicPartition(self.topic, partition), offset)

    def assigned(self) -> set[int]:
        return {tp.partition for tp in self._consumer.assignment()} if self._consumer else set()

    def end_offsets(self) -> dict[int, int]:
        return self._offsets("end_offsets")

    def beginning_offsets(self) -> dict[int, int]:
        return self._offsets("beginning_offsets")

    def _offsets(self, which: str) -> dict[int, int]:
        if self._consumer is None:
            return {}  # not started: nothing assigned, nothing to check yet
        try:
            partitions = self._consumer.partitions_for_topic(self.topic) or set()
            found = getattr(self._consumer, which)([TopicPartition(self.topic, p) for p in partitions])
        except KafkaError as exc:
            raise EventLogUnavailable(f"Kafka at {self.bootstrap_servers}: {which} failed: {exc!r}") from exc
        return {tp.partition: offset for tp, offset in found.items()}

    def committed(self, partitions: set[int]) -> dict[int, int]:
        consumer = self._started()
        try:
            found = {p: consumer.committed(TopicPartition(self.topic, p)) for p in partitions}
        except KafkaError as exc:
            raise EventLogUnavailable(f"Kafka at {self.bootstrap_servers}: committed offsets: {exc!r}") from exc
        return {p: o for p, o in found.items() if o is not None}

    def commit(self, positions: dict[int, int]) -> None:
        consumer, owned = self._started(), self.assigned()
        offsets = {
            TopicPartition(self.topic, p): OffsetAndMetadata(o, "", -1) for p, o in positions.items() if p in owned
        }
        if offsets:
            try:
                consumer.commit(offsets)
            except KafkaError as exc:
                raise EventLogUnavailable(f"Kafka at {self.bootstrap_servers}: commit failed: {exc!r}") from exc

    def _started(self) -> Any:
        if self._consumer is None:
            raise RuntimeError(f"group member of {self.group!r} on {self.topic!r}: start() first")
        return self._consumer

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close(autocommit=False)
            self._consumer = None
