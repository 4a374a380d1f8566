"""Group membership, the event log's second port: a reader that owns some partitions of
a topic, shared with the other members of its consumer group.

Ownership can change while it runs (a rebalance); each time partitions are assigned the
member asks its owner where to start, so a projector's positions always come from the
view store (stored in the same transaction as the rows), never from the broker. A
subscriber keeps its positions with the group instead (``committed`` / ``commit``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator

from ledger.eventlog.base import EventLog, EventLogUnavailable, StoredRecord
from ledger.settings import Settings

__all__ = ["GroupMember", "OnAssigned", "OnRevoked", "PartitionSource", "WholeLogSource"]

OnAssigned = Callable[[set[int]], dict[int, int]]
"""Called with newly assigned partitions; returns the offset to read next in each."""
OnRevoked = Callable[[set[int]], None]


class PartitionSource(ABC):
    """Records of the partitions this process currently owns."""

    topic: str

    @abstractmethod
    def start(self, on_assigned: OnAssigned, on_revoked: OnRevoked) -> None:
        """Begin reading; ``on_assigned`` is called (from ``start`` or from a ``poll``)
        before any record of a partition, and reading starts where it says. If it raises,
        the error comes out of that call, nothing of those partitions is read, and the
        same call made again asks again."""

    @abstractmethod
    def poll(self, max_records: int, timeout_ms: int) -> list[StoredRecord]:
        """Up to ``max_records`` records, waiting at most ``timeout_ms`` for the first; in
        ascending offsets within each partition. ``EventLogUnavailable`` when the log
        cannot be reached: the member stays usable and the next poll goes on."""

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
        """Leave the group (its partitions go to the other members at once); idempotent.
        ``start`` may be called again afterwards."""


class GroupMember(PartitionSource):
    """A member of consumer group ``group``, which also keeps the group's positions."""

    group: str

    @abstractmethod
    def committed(self, partitions: set[int]) -> dict[int, int]:
        """The group's saved next offsets of these partitions (absent where none was saved).
        Called once started (from ``on_assigned``, say)."""

    @abstractmethod
    def commit(self, positions: dict[int, int]) -> None:
        """Durably save the group's next offsets (on return they survive a kill -9) for the
        partitions this member owns; others are left to their owner. Called once started.
        ``EventLogUnavailable`` when the log cannot be reached."""


class WholeLogSource(PartitionSource):
    """Owns every partition of any event log, outside any group: a rebuild, a follower
    that saves nothing (``ledger tail``), and the base of a log without real groups."""

    def __init__(self, log: EventLog) -> None:
        self.log, self.topic = log, log.topic
        self._owned: set[int] = set()
        self._positions: dict[int, int] = {}
        self._batches: Iterator[list[StoredRecord]] | None = None
        self._buffer: list[StoredRecord] = []
        self._poll_timeout_ms = 200

    def start(self, on_assigned: OnAssigned, on_revoked: OnRevoked) -> None:
        self._owned = set(range(self.log.partitions))  # owned while asked where to start, as in a group
        self._positions = dict(on_assigned(set(self._owned)))
        self._restart()

    def _restart(self) -> None:
        self._buffer = []
        self._batches = self.log.subscribe(dict(self._positions), poll_timeout_ms=self._poll_timeout_ms)

    def poll(self, max_records: int, timeout_ms: int) -> list[StoredRecord]:
        assert self._batches is not None, "start() first"
        self._poll_timeout_ms = timeout_ms
        if not self._buffer:
            try:
                self._buffer = next(self._batches)
            except EventLogUnavailable:
                self._restart()  # a generator that raised is finished: the next poll follows anew
                raise
        batch, self._buffer = self._buffer[:max_records], self._buffer[max_records:]
        for record in batch:
            self._positions[record.partition] = record.offset + 1
        return batch

    def seek(self, positions: dict[int, int]) -> None:
        self._positions.update(positions)
        self._restart()

    def assigned(self) -> set[int]:
        return set(self._owned)

    def end_offsets(self) -> dict[int, int]:
        return self.log.end_offsets()

    def beginning_offsets(self) -> dict[int, int]:
        return self.log.beginning_offsets()

    def close(self) -> None:
        self._batches, self._owned = None, set()


def member_timeouts(settings: Settings) -> dict[str, int]:
    """What a Kafka group member takes from the settings beyond the broker (both clients'
    ``from_settings``): its session, poll-interval and request time-outs."""
    return {"session_timeout_ms": settings.consumer_session_timeout_ms,
            "max_poll_interval_ms": settings.consumer_max_poll_interval_ms,
            "request_timeout_ms": settings.request_timeout_ms}  # fmt: skip
