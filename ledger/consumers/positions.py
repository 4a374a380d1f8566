"""Where a subscriber keeps its position: the next offset to read per partition, saved only
after the caller has handled everything before it, so a restart resumes without a gap
(at worst the event in hand at a crash is delivered again)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from ledger.eventlog.group import GroupMember

__all__ = ["GroupPositions", "MemoryPositions", "PositionStore"]


class PositionStore(ABC):
    @abstractmethod
    def load(self, partitions: set[int]) -> dict[int, int]:
        """Saved next offsets of these partitions (absent where none was saved)."""

    @abstractmethod
    def save(self, positions: dict[int, int]) -> None:
        """Durably record these next offsets (on return they survive a kill -9)."""

    def close(self) -> None:  # noqa: B027 - most stores hold nothing of their own
        """Release what the store holds. Idempotent."""


class GroupPositions(PositionStore):
    """The positions of a consumer group, kept by the group (Kafka's committed offsets, a
    table beside the embedded log) through the member that reads for it."""

    def __init__(self, member: GroupMember) -> None:
        self.member = member

    def load(self, partitions: set[int]) -> dict[int, int]:
        return self.member.committed(partitions)

    def save(self, positions: dict[int, int]) -> None:
        self.member.commit(positions)


class MemoryPositions(PositionStore):
    """For followers that never resume (``ledger tail``): positions live as long as the process."""

    def __init__(self) -> None:
        self.saved: dict[int, int] = {}

    def load(self, partitions: set[int]) -> dict[int, int]:
        return {p: o for p, o in self.saved.items() if p in partitions}

    def save(self, positions: dict[int, int]) -> None:
        self.saved.update(positions)
