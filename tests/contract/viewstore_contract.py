"""The contract every view store keeps (PostgreSQL and SQLite run the same cases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from ledger.domain.events import (
    PeriodicTaskRegistered,
    PeriodicTaskTriggered,
    TaskEvent,
    TaskFailed,
    TaskPending,
    TaskStarted,
    TaskSucceeded,
)
from ledger.domain.fold import fold
from ledger.domain.periodic import fold_periodic
from ledger.domain.statuses import TaskStatus
from ledger.projections.rows import Decoded, history_events, history_row
from ledger.projections.store import Changes, StaleOffsets, TaskFilter, ViewStore

T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def lifecycle(
    task_id: str, *, status: TaskStatus = TaskStatus.DONE, at: datetime = T0, name: str = "app.add", worker: str = "w1"
) -> list[TaskEvent]:
    events: list[TaskEvent] = [
        TaskPending(task_id=task_id, task_name=name, args=[1, 2], kwargs={"k": "é\t\n\\"}, occurred_at=at),
        TaskStarted(
            task_id=task_id,
            task_name=name,
            occurred_at=at + timedelta(seconds=1),
            emitter={"host": "h", "pid": 1, "worker": worker},
        ),
    ]
    done_at = at + timedelta(seconds=2)
    if status is TaskStatus.DONE:
        events.append(
            TaskSucceeded(
                task_id=task_id,
                result={"sum": 3, "list": [1.5, None]},
                runtime=0.25,
                occurred_at=done_at,
                emitter={"host": "h", "pid": 1, "worker": worker},
            )
        )
    elif status is TaskStatus.FAILURE:
        events.append(
            TaskFailed(
                task_id=task_id,
                exc_type="ValueError",
                exc_message="bad",
                traceback="Traceback…",
                occurred_at=done_at,
                emitter={"host": "h", "pid": 1, "worker": worker},
            )
        )
    return events


def changes_for(events: list[TaskEvent], *, partition: int = 0, first_offset: int = 0, expected: int = 0) -> Changes:
    items = [Decoded(e, partition, first_offset + i) for i, e in enumerate(events)]
    by_task: dict[str, list[tuple[TaskEvent, int | None]]] = {}
    for item in items:
        assert isinstance(item.event, TaskEvent)
        by_task.setdefault(item.event.task_id, []).append((item.event, item.offset))
    tasks = [s for s in (fold(v) for v in by_task.values()) if s is not None]
    return Changes(
        "views",
        "topic",
        {partition: expected},
        {partition: first_offset + len(items)},
        tasks=tasks,
        task_history=[history_row(i) for i in items],
    )


class ViewStoreContract:
    """Subclasses provide ``store`` (a migrated, empty store) as a fixture."""

    def test_migrate_twice_is_harmless(self, store: ViewStore) -> None:
        assert store.migrate() == []

    def test_a_written_batch_reads_back_exactly(self, store: ViewStore) -> None:
        events = lifecycle("t1")
        store.write(changes_for(events))
        expected = fold([(e, i) for i, e in enumerate(events)])
        assert store.get_task("t1") == expected
        assert store.load_tasks(["t1", "nope"]) == {"t1": expected}
        assert store.offsets("views", "topic") == {0: 3}
        assert store.known_event_ids([e.event_id for e in events] + [uuid4()]) == {e.event_id for e in events}

    def test_history_refolds_to_the_stored_row(self, store: ViewStore) -> None:
        events = lifecycle("t1", status=TaskStatus.FAILURE)
        store.write(changes_for(events))
        history = store.task_history(["t1"])
        assert [h.offset for h in history] == [0, 1, 2]
        assert [h.type for h in history] == ["task.pending", "task.started", "task.failed"]
        assert fold(history_events(history)) == store.get_task("t1")

    def test_a_batch_from_moved_offsets_is_refused_whole(self, store: ViewStore) -> None:
        store.write(changes_for(lifecycle("t1")))
        with pytest.raises(StaleOffsets):
            store.write(changes_for(lifecycle("t2"), expected=0))  # stored is 3 now
        assert store.get_task("t2") is None
        assert store.offsets("views", "topic") == {0: 3}
        store.write(changes_for(lifecycle("t2"), first_offset=3, expected=3))
        assert store.get_task("t2") is not None

    def test_list_tasks_filters_and_pages_without_gaps_or_repeats(self, store: ViewStore) -> None:
        events: list[TaskEvent] = []
        for i in range(25):
            status = TaskStatus.FAILURE if i % 5 == 0 else TaskStatus.DONE
            at = T0 + timedelta(seconds=i // 2)  # ties on date_done: task_id breaks them
            events += lifecycle(f"t{i:02d}", status=status, at=at, worker=f"w{i % 2}")
        store.write(changes_for(events))
        seen: list[str] = []
        after = None
        while True:
            page = store.list_tasks(TaskFilter(), after=after, limit=7)
            if not page:
                break
            seen += [s.task_id for s in page]
            from ledger.projections.store import Cursor

            after = Cursor(page[-1].date_done, page[-1].task_id)
        assert len(seen) == 25 == len(set(seen))
        dones = [store.get_task(t).date_done for t in seen]  # type: ignore[union-attr]
        assert dones == sorted(dones, reverse=True)
        failed = store.list_tasks(TaskFilter(statuses=(TaskStatus.FAILURE,)), after=None, limit=100)
        assert sorted(s.task_id for s in failed) == ["t00", "t05", "t10", "t15", "t20"]
        w1 = store.list_tasks(TaskFilter(worker="w1", since=T0 + timedelta(seconds=6)), after=None, limit=100)
        assert w1 and all(s.worker == "w1" and s.date_done >= T0 + timedelta(seconds=6) for s in w1)
        assert store.status_counts() == {TaskStatus.DONE: 20, TaskStatus.FAILURE: 5}

    def test_deleted_tasks_leave_rows_and_history(self, store: ViewStore) -> None:
        store.write(changes_for(lifecycle("t1") + lifecycle("t2")))
        store.write(Changes("views", "topic", {0: 6}, {0: 7}, deleted_tasks=["t1"]))
        assert store.get_task("t1") is None and store.task_history(["t1"]) == []
        assert store.get_task("t2") is not None

    def test_slowest_tasks_come_first(self, store: ViewStore) -> None:
        store.write(changes_for(lifecycle("a") + lifecycle("b", status=TaskStatus.FAILURE)))
        slow = store.slowest_tasks(5)
        assert [s.task_id for s in slow] == ["a"]  # the failure carried no runtime

    def test_finished_before(self, store: ViewStore) -> None:
        store.write(changes_for(lifecycle("old", at=T0) + lifecycle("new", at=T0 + timedelta(days=1))))
        assert store.finished_before(T0 + timedelta(hours=1), limit=10) == ["old"]

    def test_periodic_rows_and_their_runs(self, store: ViewStore) -> None:
        reg = PeriodicTaskRegistered(name="nightly", task="app.report", interval_seconds=60, occurred_at=T0)
        trig = [
            PeriodicTaskTriggered(name="nightly", task_id=f"run{i}", occurred_at=T0 + timedelta(minutes=i))
            for i in (1, 2)
        ]
        state = fold_periodic([reg, *trig])
        assert state is not None
        items = [Decoded(e, 1, i) for i, e in enumerate([reg, *trig])]
        store.write(
            Changes(
                "views", "topic", {1: 0}, {1: 3}, periodic=[state], periodic_history=[history_row(i) for i in items]
            )
        )
        store.write(changes_for(lifecycle("run2", status=TaskStatus.FAILURE)))
        assert store.periodic_tasks() == [state]
        assert store.load_periodic(["nightly"]) == {"nightly": state}
        runs = store.periodic_runs()["nightly"]
        assert [(r.task_id, r.status) for r in runs] == [("run1", None), ("run2", TaskStatus.FAILURE)]
        assert [h.type for h in store.periodic_history(["nightly"])] == ["periodic.registered"] + [
            "periodic.triggered"
        ] * 2
