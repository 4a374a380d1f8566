"""Shared by the HTTP API tests: a projected stream and its expected views."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.domain.events import AnyEvent
from ledger.domain.fold import TaskState
from ledger.domain.periodic import PeriodicState
from ledger.eventlog.base import EventLog
from ledger.settings import Settings
from tests.streams import append_all, expected_views, project_all, stream


@dataclass
class Projected:
    events: list[AnyEvent]
    tasks: dict[str, TaskState]
    periodic: dict[str, PeriodicState]


def project_stream(settings: Settings, log: EventLog, *, seed: int, tasks: int) -> Projected:
    events = stream(seed=seed, tasks=tasks)
    positions = append_all(log, events)
    project_all(settings)
    expected_tasks, expected_periodic = expected_views(events, positions)
    return Projected(events, expected_tasks, expected_periodic)
