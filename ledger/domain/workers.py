"""Workers: what a worker's events make of it, and whether it is online.

A Celery worker announces itself (``worker.online``), beats every ``freq`` seconds
(``worker.heartbeat``) and says goodbye when it stops cleanly (``worker.offline``); a
killed worker just stops beating. Its row (``WorkerState``) merges its events in any order
(``merge``: every column moves one way only, so the order they are read in, a duplicate
and a rebuild all give the same row), and ``presence`` tells online from offline at the
time asked: the one rule every reader applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal
from uuid import UUID, uuid5

from ledger.domain.events import WorkerEvent, WorkerOffline

__all__ = [
    "DEFAULT_FREQ",
    "MISSED_BEATS",
    "Presence",
    "WorkerState",
    "merge",
    "offline_after",
    "presence",
    "sighting",
    "stopped_at",
    "worker_event_id",
]

DEFAULT_FREQ: Final = 2.0
"""Celery's heartbeat interval in seconds, for an event that does not say its own."""
MISSED_BEATS: Final = 3
"""Heartbeats a worker may miss before it counts as offline."""
WORKER_NAMESPACE: Final = UUID("3c1e9a4d-7b52-5f08-a6d3-1e2f4b8c9d70")
Presence = Literal["online", "offline"]


def worker_event_id(hostname: str, event_type: str, occurred_at: datetime) -> UUID:
    """The id of a worker's event: ``uuid5`` of its hostname, type and time (UTC, to the
    microsecond), so the same heartbeat delivered twice (two ingesters) is one event."""
    when = occurred_at.astimezone(UTC).isoformat(timespec="microseconds")
    return uuid5(WORKER_NAMESPACE, f"{hostname}\x00{event_type}\x00{when}")


@dataclass(frozen=True, slots=True)
class WorkerState:
    """One worker as the views show it (each field a ``worker_meta`` column).

    ``last_heartbeat`` and ``offline_at`` are kept apart (the latest online or heartbeat,
    the latest offline) rather than one cleared by the other, so merging stays
    order-free; ``stopped_at`` reads which one holds. The details (``freq`` …
    ``pid``) are the latest event's (``last_seen``, then ``last_event_id``)."""

    hostname: str
    first_seen: datetime
    last_seen: datetime
    last_heartbeat: datetime | None
    offline_at: datetime | None
    freq: float | None
    sw_ident: str | None
    sw_ver: str | None
    sw_sys: str | None
    loadavg: tuple[float, float, float] | None
    processed: int | None
    active: int | None
    pid: int
    last_event_id: UUID


def sighting(event: WorkerEvent) -> WorkerState:
    """The row one event alone makes."""
    at = event.occurred_at
    beat = None if isinstance(event, WorkerOffline) else at
    return WorkerState(
        hostname=event.hostname,
        first_seen=at,
        last_seen=at,
        last_heartbeat=beat,
        offline_at=at if beat is None else None,
        freq=event.freq,
        sw_ident=event.sw_ident,
        sw_ver=event.sw_ver,
        sw_sys=event.sw_sys,
        loadavg=event.loadavg,
        processed=event.processed,
        active=event.active,
        pid=event.emitter.pid,
        last_event_id=event.event_id,
    )


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b > a) else a


def merge(held: WorkerState, other: WorkerState) -> WorkerState:
    """Two rows of one worker as one: the earliest first sighting, the latest heartbeat
    and offline, the details of the latest event. Commutative, associative and idempotent,
    so any order and any duplicates give the same row (the writer's upsert does the same in
    SQL)."""
    newer = other if (other.last_seen, other.last_event_id) > (held.last_seen, held.last_event_id) else held
    return WorkerState(
        hostname=held.hostname,
        first_seen=min(held.first_seen, other.first_seen),
        last_seen=newer.last_seen,
        last_heartbeat=_latest(held.last_heartbeat, other.last_heartbeat),
        offline_at=_latest(held.offline_at, other.offline_at),
        freq=newer.freq,
        sw_ident=newer.sw_ident,
        sw_ver=newer.sw_ver,
        sw_sys=newer.sw_sys,
        loadavg=newer.loadavg,
        processed=newer.processed,
        active=newer.active,
        pid=newer.pid,
        last_event_id=newer.last_event_id,
    )


def stopped_at(last_heartbeat: datetime | None, offline_at: datetime | None) -> datetime | None:
    """When the worker said it went offline, unless a later online or heartbeat (it
    started again) overrides that; None if it never did. A tie counts as offline: Celery
    sends the offline event last."""
    if offline_at is None or (last_heartbeat is not None and last_heartbeat > offline_at):
        return None
    return offline_at


def offline_after(last_heartbeat: datetime, freq: float | None) -> datetime:
    """When a worker that beats no more counts as offline: ``MISSED_BEATS`` intervals
    after its last heartbeat (its own ``freq``, else Celery's default)."""
    return last_heartbeat + timedelta(seconds=MISSED_BEATS * (freq or DEFAULT_FREQ))


def presence(last_heartbeat: datetime | None, offline_at: datetime | None, freq: float | None,
             now: datetime) -> Presence:  # fmt: skip
    """Online or offline at ``now``: offline after an offline event (``stopped_at``), or
    when the last heartbeat is older than ``MISSED_BEATS`` times ``freq`` (a killed worker, a
    lost network); online otherwise."""
    if stopped_at(last_heartbeat, offline_at) is not None or last_heartbeat is None:
        return "offline"
    return "offline" if now > offline_after(last_heartbeat, freq) else "online"
