"""Runs a projector as a process: signals, periodic lag lines, clean exit.

SIGTERM / Ctrl-C set a stop flag that the loop checks between batches, so the batch in
hand is either committed whole or not at all, and the process exits 0.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

from ledger.consumers.lag import log_lag
from ledger.consumers.projector import TRANSIENT, Projector, ProjectorStats
from ledger.eventlog.base import EventLog
from ledger.retry import Backoff, keep_trying

log = logging.getLogger(__name__)


def install_stop_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("stop requested", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_projector(
    projector: Projector,
    event_log: EventLog,
    stop: threading.Event,
    *,
    lag_every_s: float = 30.0,
) -> ProjectorStats:
    """Project until ``stop`` is set, logging the lag every ``lag_every_s`` seconds. A
    backend that is away at start, or when the lag is measured, is waited for, not fatal."""
    _start_when_ready(projector, stop)
    log.info("projector started", extra={"topic": projector.topic, "projection": projector.projection})
    next_lag = time.monotonic()
    try:
        while not stop.is_set():
            projector.step(stop)
            if time.monotonic() >= next_lag:
                next_lag = time.monotonic() + lag_every_s
                try:
                    log_lag(event_log, projector.store, projector.projection)
                except TRANSIENT as exc:
                    log.warning("lag not measured: a backend is away", extra={"error": str(exc)})
    finally:
        projector.close()
    log.info("projector stopped", extra={"events": projector.stats.events, "batches": projector.stats.batches})
    return projector.stats


def _start_when_ready(projector: Projector, stop: threading.Event) -> None:
    """Start once the backends answer (or ``stop`` is set): the projector may be started
    before its database or broker, by a service manager that starts everything at once."""
    keep_trying(projector.start, Backoff("backend away at start, retrying", log), TRANSIENT, stop)
