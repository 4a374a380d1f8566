"""Workers, the Python query API: each Celery worker the ledger has heard from (its
``worker.*`` events, ``worker_meta``), online or offline at the time asked
(``domain.workers.presence``), and the tasks it ran (``task_meta.worker``).

The status is computed when asked, never stored: a worker that stops beating turns
offline with no event saying so, ``MISSED_BEATS`` intervals after its last heartbeat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from pydantic import TypeAdapter, ValidationError

from ledger.domain.fields import Identifier
from ledger.domain.statuses import TaskStatus
from ledger.domain.workers import Presence, WorkerState, offline_after, presence, stopped_at
from ledger.projections.store import ViewReader

__all__ = ["NEWEST_TASKS", "Worker", "WorkerDetail", "WorkerQueries"]

NEWEST_TASKS: Final = 10
"""How many of a worker's newest task ids ``WorkerQueries.worker`` gives."""
MAX_LIMIT: Final = 1000
_HOSTNAME: Final = TypeAdapter[str](Identifier)


@dataclass(frozen=True, slots=True)
class Worker:
    """One worker as an operator reads it, at ``checked_at``."""

    hostname: str
    status: Presence
    checked_at: datetime
    """The time ``status`` is true at (the query's now)."""
    first_seen: datetime
    last_seen: datetime
    last_heartbeat: datetime | None
    """Its latest online or heartbeat event."""
    offline_at: datetime | None
    """When it said it went offline (``worker.offline``), unless it came back since."""
    silent_since: datetime | None
    """Offline by missed heartbeats: when the last one was due (``offline_after``)."""
    freq: float | None
    sw_ident: str | None
    sw_ver: str | None
    sw_sys: str | None
    loadavg: tuple[float, float, float] | None
    processed: int | None
    active: int | None
    pid: int

    @property
    def software(self) -> str:
        """``py-celery 5.4.0 (Linux)``, as much of it as the worker said."""
        name = " ".join(part for part in (self.sw_ident, self.sw_ver) if part)
        return f"{name} ({self.sw_sys})" if self.sw_sys else name


@dataclass(frozen=True, slots=True)
class WorkerDetail(Worker):
    """One worker and the tasks it ran (as ``task_meta`` records their worker)."""

    tasks: dict[TaskStatus, int]
    """How many of its tasks are in each status now (statuses with none absent)."""
    newest_tasks: list[str]
    """Its newest task ids (by first seen), at most ``NEWEST_TASKS``."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class WorkerQueries:
    """Reads of the workers (``ViewReader.workers`` / ``worker_tasks``); ``now`` is the
    clock their status is computed against."""

    def __init__(self, reader: ViewReader, *, now: Callable[[], datetime] = utcnow) -> None:
        self.reader, self.now = reader, now

    def workers(self, *, limit: int = 200) -> list[Worker]:
        """Every worker by hostname, at most ``limit`` (1 to 1000)."""
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit: must be between 1 and {MAX_LIMIT}, got {limit}")
        now = self.now()
        return [_worker(state, now) for state in self.reader.workers(limit=limit)]

    def worker(self, hostname: str) -> WorkerDetail | None:
        """One worker by hostname, with its tasks; None for a hostname never heard from."""
        _check_hostname(hostname)
        found = self.reader.workers(hostname=hostname, limit=1)
        if not found:
            return None
        ran = self.reader.worker_tasks(hostname, newest=NEWEST_TASKS)
        seen = _worker(found[0], self.now())
        fields = {name: getattr(seen, name) for name in Worker.__dataclass_fields__}
        return WorkerDetail(**fields, tasks=ran.counts, newest_tasks=ran.newest)


def _check_hostname(hostname: str) -> None:
    """The rule of every id a query matches exactly (``fields.Identifier``)."""
    try:
        _HOSTNAME.validate_python(hostname)
    except ValidationError as exc:
        raise ValueError(f"hostname: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None


def _worker(state: WorkerState, now: datetime) -> Worker:
    status = presence(state.last_heartbeat, state.offline_at, state.freq, now)
    stopped = stopped_at(state.last_heartbeat, state.offline_at)
    silent = None
    if status == "offline" and stopped is None and state.last_heartbeat is not None:
        silent = offline_after(state.last_heartbeat, state.freq)
    return Worker(
        hostname=state.hostname, status=status, checked_at=now, first_seen=state.first_seen,
        last_seen=state.last_seen, last_heartbeat=state.last_heartbeat, offline_at=stopped, silent_since=silent,
        freq=state.freq, sw_ident=state.sw_ident, sw_ver=state.sw_ver, sw_sys=state.sw_sys, loadavg=state.loadavg,
        processed=state.processed, active=state.active, pid=state.pid,
    )  # fmt: skip
