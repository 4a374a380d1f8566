"""Emitting from inside someone else's process (a Celery worker, beat, a web app that
publishes tasks), where recording must never make the host wait or fail.

``WorkerLedger`` is the user's ``Ledger`` as one worker writes it: the same log, codec,
strictness and runs (so the rules see every step this process records, whichever worker
name it is written as), events stamped with that worker's name, and appends handed to the producer
without waiting for the broker's acknowledgement where the log can (Kafka's
``append_nowait``), so a task's thread never waits on a network round trip. A failure
that only shows when the acknowledgement comes back is collected by ``InFlight`` and
counted in the user's ledger's ``emit_errors``, like a failure that raises at once.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from ledger.domain.events import PeriodicTaskEvent, TaskEvent, event_key
from ledger.eventlog.base import LogRecord, Position
from ledger.sdk import Ledger
from ledger.wire import encode

__all__ = ["NOT_YET_KNOWN", "InFlight", "WorkerLedger"]

NOT_YET_KNOWN = -1
"""The offset ``WorkerLedger.emit`` reports for a record the broker has not acknowledged."""


class Completion(Protocol):
    """What a non-blocking append returns (``ledger.eventlog.pending.PendingAppend``)."""

    def done(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> list[Position]: ...


class InFlight:
    """Appends handed to the producer and not yet known to be stored.

    Each ``add`` first settles the appends that have completed (oldest first, so the check
    costs nothing while the broker keeps up); ``settle`` waits for all of them (worker
    shutdown). A failed one is logged and counted on ``owner``, never raised.
    """

    def __init__(self, owner: Ledger) -> None:
        self.owner = owner
        self._items: deque[Completion] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, completion: Completion) -> None:
        with self._lock:
            self._items.append(completion)
            finished = []
            while self._items and self._items[0].done():
                finished.append(self._items.popleft())
        for item in finished:
            self._check(item, 0)

    def settle(self, timeout: float | None) -> None:
        with self._lock:
            items, self._items = list(self._items), deque()
        for item in items:
            self._check(item, timeout)

    def _check(self, item: Completion, timeout: float | None) -> None:
        self.owner.quietly("an event the log did not acknowledge", lambda: item.wait(timeout))


class WorkerLedger(Ledger):
    """``owner``'s log and codec, written as ``worker``, without waiting for acks."""

    def __init__(self, owner: Ledger, worker: str | None, in_flight: InFlight) -> None:
        super().__init__(owner.log, owner.codec, strict=owner.strict, worker=worker, runs=owner.runs,
                         periodic=owner.periodic)
        self._in_flight = in_flight
        nowait: Callable[[Sequence[LogRecord]], Completion] | None
        nowait = getattr(owner.log, "append_nowait", None)
        self._nowait = nowait

    def emit(self, event: TaskEvent | PeriodicTaskEvent) -> Position:
        """Hand the event to the producer; its offset is ``NOT_YET_KNOWN``. A log without
        non-blocking appends (the embedded one: a local write) appends as usual."""
        if self._nowait is None:
            return super().emit(event)
        self._in_flight.add(self._nowait([encode(event, self.codec)]))
        return Position(self.log.partition_for(event_key(event)), NOT_YET_KNOWN)

    def close(self) -> None:
        """The log is the owner's: it closes it."""
