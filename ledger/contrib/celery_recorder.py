"""Where an app's Celery signals write: this process's ledger, opened on first use.

A Celery deployment runs the same app in several processes: publishers, the worker's main
process (which receives and revokes), its prefork children (which run the tasks), beat
(embedded with ``-B``: a child that closes every inherited file descriptor). A Kafka
producer or an SQLite connection must not cross a fork, so a ledger built from settings
is opened lazily in each process, on its first event, and not at import of the app
module: the worker forks its pool and beat before it receives anything. While a ledger
cannot be opened (Kafka down), events are dropped and counted, and opening is retried
at most every ``REOPEN_AFTER_S`` so tasks do not each wait for a connection time-out.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from time import monotonic
from typing import Any, Final

from ledger.bootstrap import build_ledger
from ledger.contrib.emitting import InFlight, WorkerLedger
from ledger.sdk import Ledger
from ledger.settings import Settings, load_settings

__all__ = ["REOPEN_AFTER_S", "Recorder", "settings_for"]

log = logging.getLogger(__name__)
REOPEN_AFTER_S: Final = 30.0


def settings_for(app: Any, settings: Settings | None) -> Settings:
    """``settings``, else ``app.conf.ledger_settings`` (Settings or a mapping of its
    fields), else the ``LEDGER_*`` environment."""
    configured = settings if settings is not None else app.conf.get("ledger_settings")
    if isinstance(configured, Settings):
        return configured
    if isinstance(configured, Mapping):
        return load_settings(**configured)
    if configured is not None:
        raise TypeError(f"ledger_settings: expected Settings or a mapping, got {type(configured).__name__}")
    return load_settings()


class Recorder:
    """Records for ``app`` into ``ledger``, or into one per process built from settings."""

    def __init__(self, app: Any, ledger: Ledger | None, settings: Settings | None) -> None:
        self.app = app
        self._settings = None if ledger is not None else settings_for(app, settings)  # bad ones fail now
        self._ledger = ledger
        self._pid = os.getpid()
        self._in_flight = InFlight(ledger) if ledger is not None else None
        self._writers: dict[str | None, WorkerLedger] = {}
        self._failed_at: float | None = None
        self._dropped = 0
        self._lock = threading.Lock()
        me = weakref.ref(self)  # a lock another thread held at fork would stay held in the child
        os.register_at_fork(after_in_child=lambda: _new_lock(me()))

    @property
    def ledger(self) -> Ledger:
        """This process's ledger (opened now if need be: raises if it cannot be)."""
        with self._lock:
            return self._open()

    @property
    def refused_steps(self) -> int:
        """Steps refused in this process as impossible (a second FAILURE of one attempt,
        say): logged at WARNING, never appended."""
        return self._ledger.refused_steps if self._ledger is not None else 0

    @property
    def emit_errors(self) -> int:
        """Events not recorded in this process: the ledger's ``emit_errors`` plus those
        dropped while no ledger could be opened."""
        return self._dropped + (self._ledger.emit_errors if self._ledger is not None else 0)

    def flush(self, timeout: float | None = 10.0) -> None:
        """Wait until every event handed to the log is stored or counted as failed. Workers
        do it on shutdown; call it before a process that only publishes exits."""
        ledger, in_flight = self._ledger, self._in_flight
        if ledger is None or in_flight is None or self._pid != os.getpid():
            return  # nothing was recorded in this process
        ledger.quietly("pending events (flush)", lambda: ledger.log.flush(timeout))
        in_flight.settle(timeout)

    def record(self, what: str, worker: str | None, call: Callable[[Ledger], object]) -> None:
        """Run ``call`` with this process's writer for ``worker``; never raises."""
        with self._lock:
            try:
                ledger, writer = self._open(), self._writer(worker)
            except Exception:
                self._dropped += 1
                return
        ledger.quietly(what, lambda: call(writer))

    def writes_to(self, ledger: Ledger) -> bool:
        return self._ledger is ledger

    def _open(self) -> Ledger:
        """The ledger of this process (the lock is held)."""
        if self._pid != os.getpid():
            self._forget_parent()
        if self._ledger is None:
            assert self._settings is not None
            if self._failed_at is not None and monotonic() - self._failed_at < REOPEN_AFTER_S:
                raise RuntimeError("ledger: not reopened yet")
            try:
                self._ledger = build_ledger(self._settings)
            except Exception:
                self._failed_at = monotonic()
                log.exception("ledger: cannot open the ledger; events are dropped (and counted) "
                              "for %.0f s before the next attempt", REOPEN_AFTER_S)  # fmt: skip
                raise
            self._in_flight = InFlight(self._ledger)
        return self._ledger

    def _writer(self, worker: str | None) -> WorkerLedger:
        writer = self._writers.get(worker)
        if writer is None:
            assert self._ledger is not None and self._in_flight is not None
            writer = self._writers[worker] = WorkerLedger(self._ledger, worker, self._in_flight)
        return writer

    def _forget_parent(self) -> None:
        """A forked child: drop the parent's writers and appends in flight, and its ledger
        when we built it (a given one is the user's to make fork-safe)."""
        self._pid = os.getpid()
        self._writers.clear()
        if self._settings is not None:
            self._ledger = None  # the parent's: closing it here would close its connections
            self._failed_at, self._dropped = None, 0
        self._in_flight = InFlight(self._ledger) if self._ledger is not None else None


def _new_lock(recorder: Recorder | None) -> None:
    if recorder is not None:
        recorder._lock = threading.Lock()
