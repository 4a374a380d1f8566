"""An append in flight: records handed to a producer whose acknowledgement is to come."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ledger.eventlog.base import AppendError, Position

__all__ = ["PendingAppend", "why"]


class PendingAppend:
    """Records handed to the producer whose acknowledgement is still to come.

    Returned by ``KafkaEventLog.append_nowait`` so high-rate emitters can keep sending while
    earlier batches are in flight; ``wait`` turns the outcome into positions or an AppendError.
    """

    __slots__ = ("_cause", "_futures", "_on_failure", "_topic", "_total")

    def __init__(
        self,
        topic: str,
        futures: list[Any],
        total: int,
        cause: BaseException | None,
        on_failure: Callable[[], None],
    ) -> None:
        self._topic, self._futures, self._total, self._cause = topic, futures, total, cause
        self._on_failure = on_failure

    def done(self) -> bool:
        """True once every sent record is acknowledged or failed (never blocks)."""
        return all(future.is_done for future in self._futures)

    def wait(self, timeout: float | None = None) -> list[Position]:
        """Positions in input order; AppendError naming the topic, the count and the cause."""
        deadline = None if timeout is None else time.monotonic() + timeout
        positions: list[Position] = []
        cause = self._cause
        for future in self._futures:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                meta = future.get(timeout=left)
            except Exception as exc:  # every failure is reported, whatever its type
                cause = cause or exc
                continue
            positions.append(Position(meta.partition, meta.offset))
        if len(positions) < self._total:
            failed = self._total - len(positions)
            self._on_failure()
            raise AppendError(
                f"{failed} of {self._total} records were not acknowledged by Kafka topic "
                f"{self._topic!r} (others of the batch may have been written): {why(cause)}"
            )
        return positions


def why(cause: BaseException | None) -> str:
    """``[Error 10] MessageSizeTooLargeError: None``, not ``MessageSizeTooLargeError(None)``."""
    text, name = str(cause), type(cause).__name__
    return text if name in text else f"{name}: {text}" if text else name
