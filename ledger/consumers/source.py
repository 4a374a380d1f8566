"""Where a projector's records come from: a reader that owns some partitions of a topic.

Ownership can change while it runs (a consumer-group rebalance); each time partitions are
assigned the source asks the projector where to start, so positions always come from the
view store (stored in the same transaction as the rows), never from the broker.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator

from ledger.eventlog.base import EventLog, StoredRecord

OnAssigned = Callable[[set[int]], dict[int, int]]
"""Called with newly assigned partitions; returns the offset to read next in each."""
OnRevoked = Callable[[set[int]], None]


class PartitionSource(ABC):
    """Records of the partitions this process currently owns."""

    topic: str

    @abstractmethod
    def start(self, on_assigned: OnAssigned, on_revoked: OnRevoked) -> None:
        """Begin reading; ``on_assigned`` is called before any record of a partition."""

    @abstractmethod
    def poll(self, max_records: int, timeout_ms: int) -> list[StoredRecord]:
        """Up to ``max_records`` records, waiting at most ``timeout_ms`` for the first."""

    @abstractmethod
    def seek(self, positions: dict[int, int]) -> None:
        """Read these partitions from these offsets next (after a refused batch)."""

    @abstractmethod
    def assigned(self) -> set[int]:
        """Partitions owned now."""

    @abstractmethod
    def end_offsets(self) -> dict[int, int]:
        """The next offset to be written in every partition of the topic (owned or not)."""

    @abstractmethod
    def beginning_offsets(self) -> dict[int, int]:
        """The earliest offset still held in every partition (retention may raise it)."""

    @abstractmethod
    def close(self) -> None:
        """Leave the group / release the log. Idempotent."""


class WholeLogSource(PartitionSource):
    """Owns every partition of an event log: the embedded backend's single projector, or a
    Kafka projector run without a group."""

    def __init__(self, log: EventLog) -> None:
        self.log, self.topic = log, log.topic
        self._positions: dict[int, int] = {}
        self._batches: Iterator[list[StoredRecord]] | None = None
        self._buffer: list[StoredRecord] = []
        self._poll_timeout_ms = 200

    def start(self, on_assigned: OnAssigned, on_revoked: OnRevoked) -> None:
        self._positions = on_assigned(set(range(self.log.partitions)))
        self._restart()

    def _restart(self) -> None:
        self._buffer = []
        self._batches = self.log.subscribe(dict(self._positions), poll_timeout_ms=self._poll_timeout_ms)

    def poll(self, max_records: int, timeout_ms: int) -> list[StoredRecord]:
        assert self._batches is not None, "start() first"
        self._poll_timeout_ms = timeout_ms
        if not self._buffer:
            self._buffer = next(self._batches)
        batch, self._buffer = self._buffer[:max_records], self._buffer[max_records:]
        for record in batch:
            self._positions[record.partition] = record.offset + 1
        return batch

    def seek(self, positions: dict[int, int]) -> None:
        self._positions.update(positions)
        self._restart()

    def assigned(self) -> set[int]:
        return set(self._positions)

    def end_offsets(self) -> dict[int, int]:
        return self.log.end_offsets()

    def beginning_offsets(self) -> dict[int, int]:
        return self.log.beginning_offsets()

    def close(self) -> None:
        self._batches = None
