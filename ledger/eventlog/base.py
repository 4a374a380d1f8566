"""The event-log port: an append-only, partitioned log of keyed byte records.

The log stores bytes, not domain events: decoding belongs to the reader, so a record that
cannot be decoded is still stored, read, and dead-lettered with its coordinates instead of
blocking a partition. Records with the same key always land in the same partition, in
append order.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Self

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class LogRecord:
    """A record to append: ``key`` decides the partition."""

    key: str
    value: bytes
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class Position:
    """Where a record sits in the log."""

    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record read back from the log, with its coordinates."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    timestamp_ms: int = 0

    @property
    def position(self) -> Position:
        return Position(self.partition, self.offset)


class AppendError(RuntimeError):
    """An append was not acknowledged: the caller must know, nothing is dropped silently."""


class EventLogUnavailable(RuntimeError):
    """The log's backend cannot be reached; the message names what was tried."""


Start = Mapping[int, int] | str
"""Where a read starts: ``{partition: offset}``, or ``"beginning"`` / ``"end"``."""


class PendingAppend(ABC):
    """Records handed to the log whose acknowledgement may still be to come."""

    @abstractmethod
    def done(self) -> bool:
        """True once every record is acknowledged or failed. Never blocks."""

    @abstractmethod
    def wait(self, timeout: float | None = None) -> list[Position]:
        """Each record's position, in the order given, once all are acknowledged.

        Raises ``AppendError`` naming how many records were not acknowledged (failed, or
        not within ``timeout`` seconds) and why; the others may have been stored.
        """


class Settled(PendingAppend):
    """An append that was acknowledged before it returned (a log that writes at once)."""

    __slots__ = ("_positions",)

    def __init__(self, positions: list[Position]) -> None:
        self._positions = positions

    def done(self) -> bool:
        return True

    def wait(self, timeout: float | None = None) -> list[Position]:
        return list(self._positions)


class EventLog(ABC):
    """Append, read and subscribe. Offsets count from 0 in each partition."""

    topic: str
    partitions: int

    @abstractmethod
    def append(self, records: Sequence[LogRecord]) -> list[Position]:
        """Append durably, in order; return each record's position (same order as given).

        Raises ``AppendError`` if any record was not acknowledged.
        """

    def append_nowait(self, records: Sequence[LogRecord]) -> PendingAppend:
        """Hand ``records`` over and return without waiting for the acknowledgement: for
        emitters that must not wait on a network round trip. The records keep their order
        and go where ``append`` would put them; ``wait()`` (or ``flush``) tells when they
        are stored. Raises ``AppendError`` at once when they cannot even be handed over
        (the log is closed, or its backend cannot be reached).

        This default appends at once: right for a log that writes synchronously.
        """
        return Settled(self.append(records))

    def flush(self, timeout: float | None = None) -> None:  # noqa: B027 - nothing to flush by default
        """Wait until every record handed over so far is acknowledged or failed (each
        ``PendingAppend`` is then done). Raises ``AppendError`` if that takes longer than
        ``timeout`` seconds. A log that writes synchronously has nothing to wait for.
        """

    def read(self, start: Start = "beginning", *, stop: Mapping[int, int] | None = None) -> Iterator[StoredRecord]:
        """Yield records from ``start`` up to ``stop`` (exclusive), then return. Offsets are
        resolved now; ``stop`` is capped at the current end offsets (a read never waits for
        new records) and partitions missing from it are read to their end. Order: per
        partition, ascending offsets."""
        begin, ends = self.resolve(start), self.end_offsets()
        end = {p: min((stop or ends).get(p, last), last) for p, last in ends.items()}
        return self._read_ranges({p: (begin[p], end[p]) for p in end if begin[p] < end[p]})

    @abstractmethod
    def _read_ranges(self, ranges: dict[int, tuple[int, int]]) -> Iterator[StoredRecord]:
        """Records of each partition in ``[first, last)`` of ``ranges[partition]``."""

    def resolve(self, start: Start) -> dict[int, int]:
        """A ``Start`` as one offset per partition; partitions a mapping leaves out start at
        0 (an offset below the log start reads from the log start)."""
        if start == "beginning":
            return self.beginning_offsets()
        if start == "end":
            return self.end_offsets()
        if isinstance(start, str):
            raise ValueError(f"start must be 'beginning', 'end' or a mapping, not {start!r}")
        return {p: start.get(p, 0) for p in range(self.partitions)}

    @abstractmethod
    def subscribe(
        self,
        start: Start = "end",
        *,
        stop_event: threading.Event | None = None,
        poll_timeout_ms: int | None = None,
    ) -> Iterator[list[StoredRecord]]:
        """Yield batches of new records from ``start``, forever, blocking while there are
        none (an empty batch is yielded after each idle poll, so callers can check their
        own state). Returns when ``stop_event`` is set."""

    @abstractmethod
    def end_offsets(self) -> dict[int, int]:
        """The next offset to be written in each partition."""

    @abstractmethod
    def beginning_offsets(self) -> dict[int, int]:
        """The earliest offset still held in each partition (retention may raise it)."""

    @abstractmethod
    def offsets_for_time(self, timestamp_ms: int) -> dict[int, int]:
        """Per partition, the earliest offset whose record timestamp is >= ``timestamp_ms``
        (the end offset where there is none)."""

    @abstractmethod
    def partition_for(self, key: str) -> int:
        """The partition that records with ``key`` go to."""

    @abstractmethod
    def close(self) -> None:
        """Flush what is pending and release connections. Idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
