"""The contract every view store keeps (PostgreSQL and SQLite run the same cases)."""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from ledger.domain.events import (
    PeriodicTaskRegistered,
    PeriodicTaskTriggered,
    TaskEvent,
    TaskFailed,
    TaskPending,
    TaskReceived,
    TaskStarted,
    TaskSucceeded,
)
from ledger.domain.fold import fold
from ledger.domain.periodic import fold_periodic
from ledger.domain.statuses import TaskStatus
from ledger.projections import migrations
from ledger.projections.columns import TASK_COLUMNS, TASK_EVENT_COLUMNS, Dialect, task_event_values, task_values
from ledger.projections.queries import TaskQueries
from ledger.projections.rows import BatchPlanner, Decoded, history_events, history_row
from ledger.projections.store import Changes, Cursor, StaleOffsets, TaskFilter, ViewStore

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


def project(store: ViewStore, events: list[TaskEvent]) -> None:
    """What the projector does with one batch read from partition 0 (the planner folds,
    refolds late events from the stored history, and the store writes rows and offsets)."""
    start = store.offsets("views", "topic").get(0, 0)
    items = [Decoded(e, 0, start + i) for i, e in enumerate(events)]
    changes = BatchPlanner(store).plan(
        items, projection="views", topic="topic", expected_offsets={0: start}, offsets={0: start + len(items)}
    )
    store.write(changes)


class Turns:
    """The walker and the writer thread: after each page the writer projects a batch aimed
    at what that page showed, and the walker reads the next page only once it has landed;
    meanwhile the writer keeps projecting other batches (at most ``noise`` per page), so
    writes also overlap the reads."""

    def __init__(self, noise: int = 3) -> None:
        self.cond = threading.Condition()
        self.pages = self.answered = self.noisy = 0
        self.noise, self.done = noise, False

    def page_read(self) -> None:
        with self.cond:
            self.pages += 1
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.answered >= self.pages or self.done)

    def next_turn(self) -> bool | None:
        """True: answer the last page now; False: a batch of noise; None: the walk is over."""
        with self.cond:
            self.cond.wait_for(lambda: self.pages > self.answered or self.noisy < self.noise or self.done)
            if self.done:
                return None
            if self.pages > self.answered:
                self.noisy = 0
                return True
            self.noisy += 1
            return False

    def answered_page(self) -> None:
        with self.cond:
            self.answered = self.pages
            self.cond.notify_all()

    def finish(self) -> None:
        with self.cond:
            self.done = True
            self.cond.notify_all()


class ViewStoreContract:
    """Subclasses provide ``store`` (a migrated, empty store), ``other`` (a second store on
    the same views, as another process would open them) and ``blank`` (a store on views
    never migrated) as fixtures, their backend's ``dialect``, and ``raw_insert``."""

    dialect: Dialect

    def raw_insert(self, store: ViewStore, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        """Insert rows as they are, bypassing ``write`` (rows an older version wrote)."""
        raise NotImplementedError

    def test_migration_0003_gives_existing_rows_the_first_seen_a_rebuild_gives(
        self, blank: ViewStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        every = migrations.load
        monkeypatch.setattr(migrations, "load", lambda dialect: [m for m in every(dialect) if m.version < 3])
        assert blank.migrate() == ["0001_views", "0002_history_index"]
        monkeypatch.undo()
        received = TaskReceived(task_id="skewed", task_name="app.add", occurred_at=T0 + timedelta(seconds=20))
        pending = TaskPending(task_id="skewed", occurred_at=T0 + timedelta(seconds=10))  # logged after
        history = [history_row(Decoded(received, 2, 5)), history_row(Decoded(pending, 2, 7))]
        skewed = fold(history_events(history))
        orphan = fold([(TaskReceived(task_id="orphan", occurred_at=T0 + timedelta(seconds=30)), None),
                       (TaskSucceeded(task_id="orphan", occurred_at=T0 + timedelta(seconds=40)), None)])  # fmt: skip
        assert skewed is not None and orphan is not None
        self.raw_insert(blank, "task_event", TASK_EVENT_COLUMNS, [task_event_values(r, self.dialect) for r in history])
        kept = [i for i, column in enumerate(TASK_COLUMNS) if column not in ("first_seen", "exc_args")]  # later ones
        self.raw_insert(blank, "task_meta", [TASK_COLUMNS[i] for i in kept],
                        [tuple(task_values(s, self.dialect)[i] for i in kept) for s in (skewed, orphan)])  # fmt: skip
        assert blank.migrate() == ["0003_first_seen", "0004_exc_args"]
        assert skewed.first_seen == received.occurred_at  # the first in the log, not the earliest
        assert blank.get_task("skewed") == skewed
        assert blank.get_task("orphan") == orphan  # no history left: its earliest known date

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
            at = T0 + timedelta(seconds=i // 2)  # ties on first_seen: task_id breaks them
            events += lifecycle(f"t{i:02d}", status=status, at=at, worker=f"w{i % 2}")
        store.write(changes_for(events))
        seen: list[str] = []
        after = None
        while True:
            page = store.list_tasks(TaskFilter(), after=after, limit=7)
            if not page:
                break
            seen += [s.task_id for s in page]
            after = Cursor(page[-1].first_seen, page[-1].task_id)
        assert len(seen) == 25 == len(set(seen))
        firsts = [store.get_task(t).first_seen for t in seen]  # type: ignore[union-attr]
        assert firsts == sorted(firsts, reverse=True)
        failed = store.list_tasks(TaskFilter(statuses=(TaskStatus.FAILURE,)), after=None, limit=100)
        assert sorted(s.task_id for s in failed) == ["t00", "t05", "t10", "t15", "t20"]
        w1 = store.list_tasks(TaskFilter(worker="w1", since=T0 + timedelta(seconds=6)), after=None, limit=100)
        assert w1 and all(s.worker == "w1" and s.date_done >= T0 + timedelta(seconds=6) for s in w1)
        assert store.status_counts() == {TaskStatus.DONE: 20, TaskStatus.FAILURE: 5}

    def test_a_walk_returns_each_task_once_while_tasks_change_under_skewed_clocks(
        self, store: ViewStore, other: ViewStore
    ) -> None:
        """The pagination guarantee: every task that existed when the walk began comes back
        exactly once, in order of first appearance, whatever happens to it meanwhile. A
        thread projects, between and during pages: outcomes from workers whose clock is
        hours behind (for tasks already walked) or a day ahead (for tasks not reached yet),
        late events that make the projector refold, and new tasks."""
        initial = [f"task{i:03d}" for i in range(60)]
        project(store, [e for i, t in enumerate(initial) for e in lifecycle(t, at=T0 + timedelta(seconds=10 * i))])
        seen: list[str] = []
        turns = Turns()
        failures: list[BaseException] = []

        def write() -> None:
            rng = random.Random(5)
            try:
                for attempt in range(1, 10_000):
                    answer = turns.next_turn()
                    if answer is None:
                        return
                    with turns.cond:
                        walked = list(seen)
                    if answer:  # outcomes skewed so that a date_done order would repeat or skip
                        ahead = [t for t in reversed(initial) if t not in walked][:2]
                        behind, late = walked[-2:], walked[:1] + ahead[:1]
                        born = T0 + timedelta(milliseconds=attempt)  # behind the cursor: walked too
                    else:
                        ahead, behind, late = rng.sample(initial, 1), rng.sample(initial, 1), rng.sample(initial, 1)
                        born = T0 + timedelta(seconds=rng.randrange(900))
                    past, future = T0 - timedelta(hours=3), T0 + timedelta(days=1)
                    project(other, [
                        *(TaskSucceeded(task_id=t, attempt=attempt, occurred_at=past) for t in behind),
                        *(TaskSucceeded(task_id=t, attempt=attempt, occurred_at=future) for t in ahead),
                        *(TaskReceived(task_id=t, occurred_at=T0 - timedelta(days=1)) for t in late),  # a refold
                        TaskPending(task_id=f"new{attempt:04d}", occurred_at=born),
                    ])  # fmt: skip
                    if answer:
                        turns.answered_page()
            except BaseException as exc:  # surfaced by the walking thread
                failures.append(exc)
                turns.finish()

        writer = threading.Thread(target=write, name="skewed-writer")
        writer.start()
        queries, walked, cursor = TaskQueries(store), [], None
        try:
            while True:
                page = queries.list_tasks(cursor=cursor, limit=7)
                walked += page.items
                with turns.cond:
                    seen.extend(s.task_id for s in page.items)
                if page.next_cursor is None or failures:
                    break
                cursor = page.next_cursor
                turns.page_read()
        finally:
            turns.finish()
            writer.join()
        assert not failures, failures
        ids = [s.task_id for s in walked]
        repeated = sorted({t for t in ids if ids.count(t) > 1})
        missing = sorted(set(initial) - set(ids))
        assert not repeated and not missing, f"walked twice: {repeated}; never walked: {missing}"
        assert len(ids) > len(initial), "new tasks landed behind the cursor: the walk reaches them too"
        firsts = [(s.first_seen, s.task_id) for s in walked]
        assert firsts == sorted(firsts, reverse=True)
        assert all(s.first_seen == T0 + timedelta(seconds=10 * i) for i, t in enumerate(initial)
                   for s in [store.get_task(t)] if s is not None)  # fmt: skip

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
