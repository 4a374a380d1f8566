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
from ledger.consumers.projector import Projector, ProjectorStats
from ledger.eventlog.base import EventLog

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
    """Project until ``stop`` is set, logging the lag every ``lag_every_s`` seconds."""
    projector.start()
    log.info("projector started", extra={"topic": projector.topic, "projection": projector.projection})
    next_lag = time.monotonic()
    try:
        while not stop.is_set():
            projector.step(stop)
            if time.monotonic() >= next_lag:
                log_lag(event_log, projector.store, projector.projection)
                next_lag = time.monotonic() + lag_every_s
    finally:
        projector.close()
    log.info("projector stopped", extra={"events": projector.stats.events, "batches": projector.stats.batches})
    return projector.stats
