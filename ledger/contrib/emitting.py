"""Emitting from inside someone else's process (a Celery worker, beat, a web app that
publishes tasks), where recording must never make the host wait or fail.

``WorkerLedger`` is the user's ``Ledger`` as one worker writes it: the same log, codec,
strictness and runs (so the rules see every step this process records, whichever worker
name it is written as), events stamped with that worker's name, and appends handed to the
log without waiting for its acknowledgement (``EventLog.append_nowait``), so a task's
thread never waits on a network round trip. A failure that only shows when the
acknowledgement comes back is collected by ``InFlight`` and counted in the user's ledger's
``emit_errors``, like a failure that raises at once.
"""

from __future__ import annotations

import threading
from collections import deque

from ledger.domain.events import LedgerEvent, event_key
from ledger.eventlog.base import PendingAppend, Position
from ledger.sdk import Ledger
from ledger.wire import encode

__all__ = ["NOT_YET_KNOWN", "InFlight", "WorkerLedger"]

NOT_YET_KNOWN = -1
"""The offset ``WorkerLedger.emit`` reports for a record the broker has not acknowledged."""


class InFlight:
    """Appends handed to the producer and not yet known to be stored.

    Each ``add`` first settles the appends that have completed (oldest first, so the check
    costs nothing while the broker keeps up); ``settle`` waits for all of them (worker
    shutdown). A failed one is logged and counted on ``owner``, never raised.
    """

    def __init__(self, owner: Ledger) -> None:
        self.owner = owner
        self._items: deque[PendingAppend] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, pending: PendingAppend) -> None:
        with self._lock:
            self._items.append(pending)
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

    def _check(self, item: PendingAppend, timeout: float | None) -> None:
        self.owner.quietly("an event the log did not acknowledge", lambda: item.wait(timeout))


class WorkerLedger(Ledger):
    """``owner``'s log and codec, written as ``worker``, without waiting for acks."""

    def __init__(self, owner: Ledger, worker: str | None, in_flight: InFlight) -> None:
        super().__init__(owner.log, owner.codec, strict=owner.strict, worker=worker, runs=owner.runs,
                         periodic=owner.periodic)
        self._in_flight = in_flight

    def emit(self, event: LedgerEvent) -> Position:
        """Hand the event to the log; its offset is ``NOT_YET_KNOWN`` until the log
        acknowledges it. A log that writes at once (the embedded one: a local write) has
        settled it already: its position, or its ``AppendError``, comes back now."""
        pending = self.log.append_nowait([encode(event, self.codec)])
        if pending.done():
            return pending.wait(0)[0]
        self._in_flight.add(pending)
        return Position(self.log.partition_for(event_key(event)), NOT_YET_KNOWN)

    def close(self) -> None:
        """The log is the owner's: it closes it."""
