"""The data the operations pages' browser tests share: a small simulated fleet of the last
hour (40 tasks; two periodic tasks, many runs missed since), one periodic run fired twice,
projected on the embedded backend."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ledger.bootstrap import build_event_log
from ledger.domain.events import AnyEvent, PeriodicTaskTriggered
from ledger.settings import Settings, load_settings
from ledger.simulate import simulate
from tests.streams import append_all, project_all

TWICE = "reports.nightly"
"""The periodic task one of whose runs a second scheduler fired again 5 s later."""


def fleet_events(start: datetime) -> list[AnyEvent]:
    events = simulate(40, seed=7, start=start, periodic=2, periodic_runs=3)
    first = next(e for e in events if isinstance(e, PeriodicTaskTriggered) and e.name == TWICE)
    again = first.model_copy(update={"event_id": uuid.uuid4(), "task_id": str(uuid.uuid4()),
                                     "occurred_at": first.occurred_at + timedelta(seconds=5)})  # fmt: skip
    return [*events, again]


def projected_fleet(data_dir: Path) -> tuple[Settings, datetime]:
    """The fleet's settings and the moment its history starts."""
    settings = load_settings(backend="embedded", data_dir=data_dir, topic="events", partitions=2)
    start = (datetime.now(UTC) - timedelta(minutes=50)).replace(microsecond=0)
    log = build_event_log(settings)
    try:
        append_all(log, fleet_events(start))
    finally:
        log.close()
    project_all(settings)
    return settings, start
