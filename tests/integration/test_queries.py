"""The query API on projected views, lag, and expiry — on both backends."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from ledger.bootstrap import build_ledger, build_projector, build_queries, build_view_writer
from ledger.consumers.lag import projector_lag
from ledger.domain.events import TaskEvent
from ledger.domain.statuses import READY_STATES, TaskStatus
from ledger.eventlog.base import EventLog
from ledger.projections.expiry import delete_expired
from ledger.projections.queries import TaskQueries
from ledger.projections.store import TaskFilter, ViewReader, ViewWriter
from ledger.settings import Settings
from tests.streams import T0, append_all, expected_views, project_all, stream


def test_get_task_reads_unknown_ids_as_pending_and_known_ones_from_the_view(
    settings: Settings, log: EventLog, reader: ViewReader
) -> None:
    events = stream(seed=21, tasks=30)
    positions = append_all(log, events)
    project_all(settings)
    queries = TaskQueries(reader)
    unknown = queries.get_task("never-seen")
    assert (unknown.status, unknown.state, unknown.result) == (TaskStatus.PENDING, None, None)
    assert queries.task_state("never-seen") is None
    tasks, _ = expected_views(events, positions)
    for task_id, state in tasks.items():
        meta = queries.get_task(task_id)
        assert meta.state == state and meta.status is state.status and meta.result == state.result
        assert queries.is_done(task_id) is (state.status is TaskStatus.DONE)


def test_pages_follow_each_other_without_gaps_or_repeats(
    settings: Settings, log: EventLog, reader: ViewReader
) -> None:
    events = stream(seed=22, tasks=120)
    positions = append_all(log, events)
    project_all(settings)
    queries = TaskQueries(reader)
    seen, cursor = [], None
    while True:
        page = queries.list_tasks(cursor=cursor, limit=17)
        seen += [t.task_id for t in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    tasks, _ = expected_views(events, positions)
    assert sorted(seen) == sorted(tasks) and len(seen) == len(set(seen))
    counts = queries.status_counts()
    assert sum(counts.values()) == len(tasks)
    assert counts[TaskStatus.FAILURE] == sum(1 for s in tasks.values() if s.status is TaskStatus.FAILURE)
    failures = queries.list_tasks(TaskFilter(statuses=(TaskStatus.FAILURE,)), limit=1000).items
    assert {t.task_id for t in failures} == {t for t, s in tasks.items() if s.status is TaskStatus.FAILURE}
    with pytest.raises(ValueError, match="cursor"):
        queries.list_tasks(cursor="not-a-cursor")
    before_first_seen = base64.urlsafe_b64encode(f"{T0.isoformat()}|{seen[0]}".encode()).decode()
    with pytest.raises(ValueError, match=r"^cursor: issued by an older version"):
        queries.list_tasks(cursor=before_first_seen)
    unversioned = base64.urlsafe_b64encode(f"9|{T0.isoformat()}|{seen[0]}".encode()).decode()
    with pytest.raises(ValueError, match=r"^cursor: not a cursor this ledger issued"):
        queries.list_tasks(cursor=unversioned)
    with pytest.raises(ValueError, match="limit"):
        queries.list_tasks(limit=0)


def test_periodic_tasks_show_runs_outcomes_and_what_is_due(settings: Settings, reader: ViewReader) -> None:
    ledger = build_ledger(settings)
    ledger.register_periodic("every-minute", "app.tick", 60)
    ledger.register_periodic("hourly", "app.report", 3600)
    runs = [ledger.delay_periodic("every-minute", dispatch=lambda i=i: f"tick-{i}") for i in range(3)]
    assert len(runs) == 3
    ledger.succeeded("tick-2", "app.tick", result=1)
    ledger.failed("tick-1", "app.tick", exc=RuntimeError("boom"))
    ledger.close()
    project_all(settings)
    now = datetime.now(UTC)
    queries = TaskQueries(reader, now=lambda: now + timedelta(minutes=5))
    by_name = {p.state.name: p for p in queries.periodic_tasks(grace_seconds=30)}
    minute = by_name["every-minute"]
    assert minute.state.total_run_count == 3 and minute.state.last_run_task_id == "tick-2"
    assert minute.last_run_status is TaskStatus.DONE
    assert minute.last_success_at is not None and minute.last_failure_at is not None
    assert minute.missed_runs == 4  # five minutes with no trigger, less the grace: four missed
    assert minute.due
    hourly = by_name["hourly"]  # never run: due one interval after its registration, not at once
    assert not hourly.due and hourly.state.total_run_count == 0 and hourly.state.registered_at is not None
    assert hourly.next_run_at == hourly.state.registered_at + timedelta(hours=1)
    assert {p.state.name for p in TaskQueries(reader, now=lambda: now).get_waiting_tasks()} == set()
    in_an_hour = TaskQueries(reader, now=lambda: now + timedelta(minutes=61))
    assert {p.state.name for p in in_an_hour.get_waiting_tasks()} == {"every-minute", "hourly"}


def test_lag_counts_what_is_not_projected_yet(
    settings: Settings, log: EventLog, store: ViewWriter, reader: ViewReader
) -> None:
    events = stream(seed=23, tasks=40, duplicates=0, late=0)
    append_all(log, events)
    assert sum(projector_lag(log, store).values()) == sum(projector_lag(log, reader).values()) == len(events)
    project_all(settings)
    assert projector_lag(log, store) == projector_lag(log, reader) == {p: 0 for p in range(log.partitions)}


def test_expired_tasks_leave_the_views_and_a_replay_agrees(
    settings: Settings, log: EventLog, store: ViewWriter, reader: ViewReader
) -> None:
    events = stream(seed=24, tasks=80, duplicates=0, late=0)
    append_all(log, events)
    project_all(settings)
    finished_early = {
        t.task_id
        for t in reader.list_tasks(
            TaskFilter(statuses=tuple(READY_STATES), until=T0 + timedelta(seconds=4)), after=None, limit=1000
        )
    }
    assert finished_early
    ledger = build_ledger(settings)
    now = T0 + timedelta(seconds=4) + timedelta(days=1)
    emitted = delete_expired(reader, ledger, timedelta(days=1), now=now)
    ledger.close()
    assert emitted == len(finished_early)
    project_all(settings)
    assert all(reader.task_state(t) is None for t in finished_early)
    assert store.task_history(finished_early) == []
    still = {e.task_id for e in events if isinstance(e, TaskEvent)} - finished_early
    assert len(store.load_tasks(still)) == len(still)
    replayed = build_view_writer(settings, schema=f"{settings.postgres_schema}_replay")
    try:
        replay = build_projector(settings, store=replayed, group=f"{settings.projector_group}-replay")
        replay.run_until_caught_up()
        replay.close()
        every = {e.task_id for e in events if isinstance(e, TaskEvent)}
        assert replayed.load_tasks(every) == store.load_tasks(every)
    finally:
        replayed.drop()
    with pytest.raises(ValueError, match="older_than"):
        delete_expired(reader, build_ledger(settings), timedelta(days=-1))
    assert build_queries(settings, reader).status_counts()[TaskStatus.DONE] > 0
