"""A ``PendingAppend`` for producers that send in the background and acknowledge each record
on its own (the Kafka adapters): whatever the client, its per-record handles become the
port's positions, or one ``AppendError`` that counts the records not acknowledged and
names the first cause."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Protocol

from ledger.eventlog.base import AppendError, LogRecord, PendingAppend, Position

__all__ = ["Ack", "Acknowledgements", "WaitingAppender", "why"]


class Ack(Protocol):
    """One record's acknowledgement, as a client adapter wraps its own future or callback."""

    def done(self) -> bool:
        """Acknowledged or failed (never blocks)."""

    def position(self, timeout: float | None) -> Position:
        """Where the record was stored; raises the client's error if it was not (or not
        within ``timeout`` seconds)."""


class Acknowledgements(PendingAppend):
    """The acknowledgements of one append. ``cause`` is an error met while handing the
    records over (only the records before it have an ``Ack``); ``on_failure`` is called
    once a failure is reported (the Kafka adapter then replaces its producer)."""

    __slots__ = ("_acks", "_cause", "_on_failure", "_total", "_where")

    def __init__(
        self,
        where: str,
        acks: Sequence[Ack],
        total: int,
        cause: BaseException | None = None,
        on_failure: Callable[[], None] = lambda: None,
    ) -> None:
        self._where, self._acks, self._total, self._cause = where, acks, total, cause
        self._on_failure = on_failure

    def done(self) -> bool:
        return all(ack.done() for ack in self._acks)

    def wait(self, timeout: float | None = None) -> list[Position]:
        deadline = None if timeout is None else time.monotonic() + timeout
        positions: list[Position] = []
        cause = self._cause
        for ack in self._acks:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                positions.append(ack.position(left))
            except Exception as exc:  # every failure is reported, whatever its type
                cause = cause or exc
        if len(positions) < self._total:
            failed = self._total - len(positions)
            self._on_failure()
            raise AppendError(
                f"{failed} of {self._total} records were not acknowledged by {self._where} "
                f"(others of the batch may have been written): {why(cause)}"
            )
        return positions


def why(cause: BaseException | None) -> str:
    """``[Error 10] MessageSizeTooLargeError: None``, not ``MessageSizeTooLargeError(None)``."""
    text, name = str(cause), type(cause).__name__
    return text if name in text else f"{name}: {text}" if text else name


class WaitingAppender(ABC):
    """A Kafka adapter's producer side: ``append`` is ``append_nowait`` waited for, with a
    flush first so nobody waits out the client's linger, all within the delivery timeout."""

    _delivery_timeout_s: float

    @abstractmethod
    def append_nowait(self, records: Sequence[LogRecord]) -> Acknowledgements: ...

    @abstractmethod
    def flush(self, timeout: float | None = None) -> None: ...

    def append(self, records: Sequence[LogRecord]) -> list[Position]:
        if not records:
            return []
        deadline = time.monotonic() + self._delivery_timeout_s
        pending = self.append_nowait(records)
        with suppress(AppendError):  # the records' own acknowledgements say which failed, and why
            self.flush(self._delivery_timeout_s)
        return pending.wait(max(0.0, deadline - time.monotonic()))
