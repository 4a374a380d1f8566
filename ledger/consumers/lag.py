"""Projector lag: per partition, the log's end offset minus the stored next offset."""

from __future__ import annotations

import logging

from ledger.eventlog.base import EventLog
from ledger.projections.store import StoredOffsets

log = logging.getLogger(__name__)


def projector_lag(event_log: EventLog, store: StoredOffsets, projection: str = "views") -> dict[int, int]:
    """Events appended but not yet projected, per partition (0 when caught up)."""
    ends = event_log.end_offsets()
    stored = store.offsets(projection, event_log.topic)
    return {p: max(0, end - stored.get(p, 0)) for p, end in sorted(ends.items())}


def log_lag(event_log: EventLog, store: StoredOffsets, projection: str = "views") -> dict[int, int]:
    """Compute the lag and emit it as one structured log line."""
    lag = projector_lag(event_log, store, projection)
    log.info("projector lag", extra={"topic": event_log.topic, "total": sum(lag.values()), "partitions": lag})
    return lag
