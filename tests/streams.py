"""Event streams for projection tests and what the views must hold after them."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from ledger.bootstrap import build_projector
from ledger.domain.events import AnyEvent, PeriodicTaskEvent, TaskEvent
from ledger.domain.fold import TaskState, fold
from ledger.domain.periodic import PeriodicState, fold_periodic
from ledger.eventlog.base import EventLog, Position
from ledger.projections.store import ViewWriter
from ledger.settings import Settings
from ledger.simulate import simulate
from ledger.wire import encode

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def stream(seed: int, tasks: int, *, periodic: int = 2, duplicates: int = 10, late: int = 10) -> list[AnyEvent]:
    """A simulated fleet's events (see ``ledger.simulate``) with duplicate appends and late
    RECEIVED events that arrive after their task finished."""
    return simulate(tasks, seed=seed, start=T0, periodic=periodic, periodic_runs=3, duplicates=duplicates, late=late)


def append_all(log: EventLog, events: list[AnyEvent], chunk: int = 500) -> list[Position]:
    positions: list[Position] = []
    for start in range(0, len(events), chunk):
        positions += log.append([encode(e) for e in events[start : start + chunk]])
    return positions


def expected_views(
    events: list[AnyEvent], positions: list[Position] | None
) -> tuple[dict[str, TaskState], dict[str, PeriodicState]]:
    """What the views must hold: the domain fold of each task's events (offsets unknown
    when ``positions`` is None)."""
    tasks: dict[str, list[tuple[TaskEvent, int | None]]] = defaultdict(list)
    periodic: dict[str, list[PeriodicTaskEvent]] = defaultdict(list)
    offsets: list[int | None] = [p.offset for p in positions] if positions else [None] * len(events)
    for event, offset in zip(events, offsets, strict=True):
        if isinstance(event, TaskEvent):
            tasks[event.task_id].append((event, offset))
        else:
            periodic[event.name].append(event)
    folded = {t: fold(e) for t, e in tasks.items()}
    return (
        {t: s for t, s in folded.items() if s is not None},
        {n: s for n, s in ((n, fold_periodic(e)) for n, e in periodic.items()) if s is not None},
    )


def project_all(settings: Settings, **overrides: object) -> None:
    projector = build_projector(settings, **overrides)  # type: ignore[arg-type]
    try:
        projector.run_until_caught_up()
    finally:
        projector.close()


def assert_views_match_fold(store: ViewWriter, events: list, positions: list) -> None:  # type: ignore[type-arg]
    tasks, periodic = expected_views(events, positions)
    assert store.load_tasks(tasks) == tasks
    assert store.load_periodic(periodic) == periodic
    assert sum(1 for _ in store.table_rows("periodic_task_meta")[1]) == len(periodic)  # and no other
    unique = {e.event_id for e in events if isinstance(e, TaskEvent)}
    history = store.task_history(tasks)
    assert len(history) == len(unique) == len({h.event_id for h in history})
