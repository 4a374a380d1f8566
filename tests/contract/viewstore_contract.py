"""The contracts of the view ports: every writer (``ViewWriterContract``) and every reader
(``ViewReaderContract``) keeps them, PostgreSQL and SQLite alike; ``MigrationContract``
holds the migrations to the declared schema and to the views older versions left."""

from __future__ import annotations

import gc
import random
import sys
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any
from uuid import uuid4

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ledger.domain.events import (
    LINKAGE_FIELDS,
    AnyEvent,
    PeriodicTaskRegistered,
    PeriodicTaskTriggered,
    TaskEvent,
    TaskFailed,
    TaskPending,
    TaskReceived,
    TaskRetried,
    TaskStarted,
    TaskSucceeded,
)
from ledger.domain.fold import fold
from ledger.domain.periodic import fold_periodic
from ledger.domain.statuses import TaskStatus
from ledger.domain.timing import DURATIONS
from ledger.domain.workflow import build_workflow
from ledger.projections.bulk import TASK_COLUMNS, TASK_EVENT_COLUMNS, Encoding, task_event_values, task_values
from ledger.projections.queries import TaskQueries
from ledger.projections.rows import BatchPlanner, Decoded, history_events, history_row
from ledger.projections.schema import SEARCH_TABLES, metadata, series_counts
from ledger.projections.series_rollup import counts_by_minute
from ledger.projections.store import (
    Changes,
    Cursor,
    InFlight,
    StaleOffsets,
    TaskFilter,
    TaskOrder,
    ViewReader,
    ViewWriter,
)
from ledger.projections.writer import SqlViewWriter
from tests.contract.legacy_views import first_batch, legacy_rows, legacy_sql, second_batch

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


def project(store: ViewWriter, events: Sequence[AnyEvent]) -> None:
    """What the projector does with one batch read from partition 0 (the planner folds,
    refolds late events from the stored history, and the store writes rows and offsets)."""
    start = store.offsets("views", "topic").get(0, 0)
    items = [Decoded(e, 0, start + i) for i, e in enumerate(events)]
    changes = BatchPlanner(store).plan(
        items, projection="views", topic="topic", expected_offsets={0: start}, offsets={0: start + len(items)}
    )
    store.write(changes)


def rollup(store: ViewWriter) -> list[tuple[int, str, int]]:
    """The rollup's rows, and (asserted equal) the GROUP BY over the history it must equal."""
    database = store.database  # type: ignore[attr-defined]
    c = series_counts.c
    with database.reading() as conn:
        rows = [tuple(r) for r in conn.execute(sa.select(c.minute, c.status, c.count).order_by(c.minute, c.status))]
        grouped = sorted(tuple(r) for r in conn.execute(counts_by_minute(database)))
    assert rows == grouped
    return rows


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


LegacyRows = tuple[str, list[str], list[list[Any]]]
"""A table, its columns, and rows as an older version stored them."""


class ViewsContract:
    """Subclasses provide ``store`` (a migrated, empty writer), ``other`` (a second writer on
    the same views, as another process would open them) and ``blank`` (a writer on views
    never migrated) as fixtures, and the hooks below; ``reader`` reads ``store``'s views."""

    backend: str
    """"postgres" or "sqlite": which ``legacy`` files describe its older views."""
    encoding: Encoding
    """How the backend's bulk write spells values (what older versions stored too)."""

    def reader_for(self, store: ViewWriter) -> ViewReader:
        """A reader of ``store``'s views, on its own connection."""
        raise NotImplementedError

    def raw_rows(self, store: ViewWriter, table: str) -> list[tuple[Any, ...]]:
        """``table``'s rows as stored (SQLite: the values; PostgreSQL: their text), by key."""
        raise NotImplementedError

    def run_legacy(self, blank: ViewWriter, statements: list[str], rows: list[LegacyRows]) -> None:
        """Run ``statements`` on ``blank``'s views (creating them), then insert ``rows``
        (table, columns, values as stored), without the ledger's code."""
        raise NotImplementedError

    @pytest.fixture
    def reader(self, store: ViewWriter) -> Iterator[ViewReader]:
        with self.reader_for(store) as reader:
            yield reader

    def raw_insert(self, store: ViewWriter, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        """Insert rows as they are, bypassing ``write`` (rows an older version wrote)."""
        assert isinstance(store, SqlViewWriter)
        target = sa.table(table, *(sa.column(c) for c in columns))
        with store.database.transaction() as conn:
            conn.execute(target.insert(), [dict(zip(columns, row, strict=True)) for row in rows])


class ViewWriterContract(ViewsContract):
    """What a projector and a rebuild rely on."""

    def test_migrate_twice_is_harmless(self, store: ViewWriter) -> None:
        assert store.migrate() == []

    def test_a_bulk_load_reads_what_it_wrote_and_leaves_the_indexes_as_migrate_made_them(
        self, store: ViewWriter, reader: ViewReader
    ) -> None:
        def indexes() -> dict[str, list[tuple[object, ...]]]:
            with store.database.reading() as conn:  # type: ignore[attr-defined]
                inspector = sa.inspect(conn)
                return {table: sorted((i["name"], tuple(i["column_names"]), i["unique"],
                                       sorted((k, str(v)) for k, v in i.get("dialect_options", {}).items()))
                                      for i in inspector.get_indexes(table)) for table in ("task_meta", "task_event")}

        migrated = indexes()
        events = lifecycle("t1")
        with store.bulk_loading():
            store.write(changes_for(events))
            assert [r.event_id for r in store.task_history(["t1"])] == [e.event_id for e in events]
            assert store.known_event_ids([events[0].event_id]) == {events[0].event_id}
        assert indexes() == migrated
        assert reader.task_state("t1") == fold([(e, i) for i, e in enumerate(events)])

    def test_a_written_batch_reads_back_exactly(self, store: ViewWriter, reader: ViewReader) -> None:
        events = lifecycle("t1")
        store.write(changes_for(events))
        expected = fold([(e, i) for i, e in enumerate(events)])
        assert reader.task_state("t1") == expected
        assert store.load_tasks(["t1", "nope"]) == {"t1": expected}
        assert store.offsets("views", "topic") == reader.offsets("views", "topic") == {0: 3}
        assert store.known_event_ids([e.event_id for e in events] + [uuid4()]) == {e.event_id for e in events}

    def test_linkage_routing_and_durations_read_back_exactly(self, store: ViewWriter, reader: ViewReader) -> None:
        linkage: dict[str, Any] = {"root_id": "root-é", "parent_id": "parent", "group_id": "group", "callback_id": "cb",
                                   "queue": "high", "exchange": "tasks", "routing_key": "high.x",
                                   "expires": T0 + timedelta(hours=1, microseconds=7)}  # fmt: skip
        events = [TaskPending(task_id="t1", occurred_at=T0, **linkage),
                  TaskReceived(task_id="t1", occurred_at=T0 + timedelta(seconds=1.5)),
                  *lifecycle("t1", at=T0 + timedelta(seconds=2))[1:]]  # fmt: skip
        store.write(changes_for(events))
        expected = fold([(e, i) for i, e in enumerate(events)])
        assert expected is not None and reader.task_state("t1") == expected
        assert {name: getattr(expected, name) for name in LINKAGE_FIELDS} == linkage
        assert (expected.queue_wait, expected.start_delay, expected.total_time) == (1.5, 1.5, 4.0)
        assert store.load_tasks(["t1"]) == {"t1": expected}

    def test_history_refolds_to_the_stored_row(self, store: ViewWriter, reader: ViewReader) -> None:
        events = lifecycle("t1", status=TaskStatus.FAILURE)
        store.write(changes_for(events))
        history = store.task_history(["t1"])
        assert [h.offset for h in history] == [0, 1, 2]
        assert [h.type for h in history] == ["task.pending", "task.started", "task.failed"]
        assert fold(history_events(history)) == reader.task_state("t1")
        assert reader.task_events("t1") == history

    def test_a_batch_from_moved_offsets_is_refused_whole(self, store: ViewWriter, reader: ViewReader) -> None:
        store.write(changes_for(lifecycle("t1")))
        with pytest.raises(StaleOffsets):
            store.write(changes_for(lifecycle("t2"), expected=0))  # stored is 3 now
        assert reader.task_state("t2") is None
        assert store.offsets("views", "topic") == {0: 3}
        store.write(changes_for(lifecycle("t2"), first_offset=3, expected=3))
        assert reader.task_state("t2") is not None

    def test_deleted_tasks_leave_rows_and_history(self, store: ViewWriter, reader: ViewReader) -> None:
        store.write(changes_for(lifecycle("t1") + lifecycle("t2")))
        store.write(Changes("views", "topic", {0: 6}, {0: 7}, deleted_tasks=["t1"]))
        assert reader.task_state("t1") is None and store.task_history(["t1"]) == []
        assert reader.task_state("t2") is not None

    def test_keys_of_any_text_are_matched_exactly(self, store: ViewWriter) -> None:
        """The planner reads thousands of keys in one bound value: quotes, commas, braces,
        backslashes and spaces inside an id must not split or escape it."""
        odd = ['a"b', "c,d", "{e}", "f\\g", " h ", "i'j", "NULL", "é✓"]
        store.write(changes_for([e for t in odd for e in lifecycle(t)]))
        assert set(store.load_tasks([*odd, "c", "d", "e"])) == set(odd)
        assert {h.key for h in store.task_history(odd[:3])} == set(odd[:3])

    def test_table_rows_stream_in_key_order(self, store: ViewWriter) -> None:
        store.write(changes_for(lifecycle("b") + lifecycle("a") + lifecycle("B")))
        columns, rows = store.table_rows("task_meta")
        assert columns[0] == "task_id" and [row[0] for row in rows] == ["B", "a", "b"]  # byte order, as str sorts


class ViewReaderContract(ViewsContract):
    """What the queries (CLI, HTTP, Python) rely on."""

    def test_a_workflow_is_every_task_sharing_a_root_or_a_group_transitively(
        self, store: ViewWriter, reader: ViewReader
    ) -> None:
        def sent(task_id: str, at: int, **links: Any) -> list[TaskEvent]:
            return [TaskPending(task_id=task_id, occurred_at=T0 + timedelta(seconds=at), **links),
                    *lifecycle(task_id, at=T0 + timedelta(seconds=at))[1:]]  # fmt: skip

        # a group of two chains (each its own root), a chord callback sent by the last one
        events = [*sent("a1", 0, root_id="a1", group_id="g", callback_id="cb"),
                  *sent("a2", 1, root_id="a1", parent_id="a1"),
                  *sent("b1", 2, root_id="b1", group_id="g", callback_id="cb"),
                  *sent("b2", 3, root_id="b1", parent_id="b1"),
                  *sent("cb", 4, root_id="b1", parent_id="b1", group_id="g"),
                  *sent("other", 5, root_id="other"), *sent("loose", 6),
                  # the SDK's top-level task records no root of its own: its children name it
                  *sent("top", 7), *sent("kid", 8, root_id="top", parent_id="top"),
                  *sent("grandkid", 9, root_id="top", parent_id="kid")]  # fmt: skip
        store.write(changes_for(events))
        states = store.load_tasks(["a1", "a2", "b1", "b2", "cb"])
        expected = build_workflow(states.values())
        assert expected is not None and {t.task_id for t in expected.tasks} == set(states)
        for start in ("a2", "b1", "cb", "a1"):  # from any task, or a root
            assert reader.workflow(start) == expected
        loose = reader.workflow("loose")
        assert loose is not None and [t.task_id for t in loose.tasks] == ["loose"] and loose.edges == ()
        assert reader.workflow("nope") is None
        for start in ("top", "kid", "grandkid"):
            flow = reader.workflow(start)
            assert flow is not None and [t.task_id for t in flow.tasks] == ["top", "kid", "grandkid"], start
            assert flow.roots == ("top",) and flow.rooted_at("top") and not flow.rooted_at("kid")

    def test_a_big_workflow_is_read_without_the_cyclic_collector(self, store: ViewWriter, reader: ViewReader) -> None:
        """Its ~4 objects a task hold no cycle: a collection in the read walks for nothing
        (``ledger.collector``)."""
        members = [f"m{i}" for i in range(600)]
        store.write(changes_for([TaskPending(task_id=m, root_id=m, group_id="big", occurred_at=T0) for m in members]))
        reading = {type(reader)._workflow_nodes.__code__, build_workflow.__code__}
        collections: list[int] = []

        def record(phase: str, info: dict[str, int]) -> None:  # a collection the read's allocations set off
            if phase == "start" and any(frame.f_code in reading for frame in _frames()):
                collections.append(info["generation"])

        gc.callbacks.append(record)
        try:
            flow = reader.workflow("m7")
        finally:
            gc.callbacks.remove(record)
        assert flow is not None and len(flow.tasks) == len(members)
        assert collections == [], "the collector ran inside the read"

    def test_list_tasks_filters_and_pages_without_gaps_or_repeats(self, store: ViewWriter, reader: ViewReader) -> None:
        events: list[TaskEvent] = []
        for i in range(25):
            status = TaskStatus.FAILURE if i % 5 == 0 else TaskStatus.DONE
            at = T0 + timedelta(seconds=i // 2)  # ties on first_seen: task_id breaks them
            events += lifecycle(f"t{i:02d}", status=status, at=at, worker=f"w{i % 2}")
        store.write(changes_for(events))
        seen: list[str] = []
        after = None
        while True:
            page = reader.list_tasks(TaskFilter(), after=after, limit=7)
            if not page:
                break
            seen += [s.task_id for s in page]
            after = Cursor(page[-1].first_seen, page[-1].task_id)
        assert len(seen) == 25 == len(set(seen))
        firsts = [reader.task_state(t).first_seen for t in seen]  # type: ignore[union-attr]
        assert firsts == sorted(firsts, reverse=True)
        failed = reader.list_tasks(TaskFilter(statuses=(TaskStatus.FAILURE,)), after=None, limit=100)
        assert sorted(s.task_id for s in failed) == ["t00", "t05", "t10", "t15", "t20"]
        w1 = reader.list_tasks(TaskFilter(worker="w1", since=T0 + timedelta(seconds=6)), after=None, limit=100)
        assert w1 and all(s.worker == "w1" and s.date_done >= T0 + timedelta(seconds=6) for s in w1)
        assert reader.status_counts() == {TaskStatus.DONE: 20, TaskStatus.FAILURE: 5}

    def test_a_walk_returns_each_task_once_while_tasks_change_under_skewed_clocks(
        self, store: ViewWriter, other: ViewWriter, reader: ViewReader
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
        queries, walked, cursor = TaskQueries(reader), [], None
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
                   for s in [reader.task_state(t)] if s is not None)  # fmt: skip

    @pytest.mark.parametrize("order", list(TaskOrder), ids=lambda order: order.value)
    def test_each_order_pages_without_gaps_or_repeats(self, store: ViewWriter, reader: ViewReader,
                                                      order: TaskOrder) -> None:  # fmt: skip
        """Every order, unfiltered and by status: a walk returns each task once, sorted by the
        order's key, ties broken by task id in the same direction."""
        events: list[TaskEvent] = []
        for i in range(25):
            task_id = f"t{i:02d}"
            # ties on first_seen (pairs) and on date_done (triples), neither in the ids' order
            at, done = T0 + timedelta(seconds=i // 2), T0 + timedelta(minutes=10 - i // 3)
            finish = TaskFailed(task_id=task_id, exc_type="E", occurred_at=done) if i % 3 == 0 else \
                TaskSucceeded(task_id=task_id, occurred_at=done)
            events += [*lifecycle(task_id, status=TaskStatus.PENDING, at=at), finish]
        store.write(changes_for(events))
        queries = TaskQueries(reader)
        for where, expected in ((TaskFilter(), 25), (TaskFilter(statuses=(TaskStatus.FAILURE,)), 9)):
            walked, cursor = [], None
            while True:
                page = queries.list_tasks(where, cursor=cursor, limit=4, order=order)
                walked += page.items
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            ids = [s.task_id for s in walked]
            assert len(ids) == expected == len(set(ids)), (where, ids)
            keys = [(order.key_of(s), s.task_id) for s in walked]
            assert keys == sorted(keys, reverse=order.descending), (where, ids)
            assert all(where.statuses == () or s.status in where.statuses for s in walked)

    @pytest.mark.parametrize("order", list(TaskOrder), ids=lambda order: order.value)
    def test_a_walk_in_each_order_returns_each_task_once_while_tasks_change(
        self, store: ViewWriter, other: ViewWriter, reader: ViewReader, order: TaskOrder
    ) -> None:
        """Between pages another writer finishes tasks already walked and tasks not reached
        yet (clocks skewed hours behind and a day ahead), makes the projector refold, and adds
        tasks. ``first_seen`` never moves: every task comes back exactly once. ``changed`` is
        when a task last changed: each task that does not change during the walk comes back
        exactly once, and every page continues the order where the cursor left it."""
        initial = [f"task{i:03d}" for i in range(40)]
        project(store, [e for i, t in enumerate(initial)
                        for e in lifecycle(t, at=T0 + timedelta(seconds=10 * i))])  # fmt: skip
        queries, walked, cursor, touched = TaskQueries(reader), [], None, set()
        previous: tuple[datetime, str] | None = None
        for turn in range(1, 100):
            page = queries.list_tasks(cursor=cursor, limit=6, order=order)
            keys = [(order.key_of(s), s.task_id) for s in page.items]
            assert keys == sorted(keys, reverse=order.descending)
            if previous is not None and keys:  # the page starts strictly after the cursor
                assert (keys[0] > previous) if not order.descending else (keys[0] < previous)
            walked += page.items
            if page.next_cursor is None:
                break
            previous, cursor = keys[-1], page.next_cursor
            seen = {s.task_id for s in walked}
            behind = [s.task_id for s in walked[-2:]]
            ahead = [t for t in initial if t not in seen][:1]
            late = ahead[-1:]
            touched.update(behind, ahead, late)
            project(other, [
                *(TaskSucceeded(task_id=t, attempt=turn, occurred_at=T0 - timedelta(hours=3)) for t in behind),
                *(TaskSucceeded(task_id=t, attempt=turn, occurred_at=T0 + timedelta(days=1)) for t in ahead),
                *(TaskReceived(task_id=t, occurred_at=T0 - timedelta(days=1)) for t in late),  # a refold
                TaskPending(task_id=f"new{turn:03d}", occurred_at=T0 + timedelta(seconds=5 * turn)),
            ])  # fmt: skip
        else:
            pytest.fail("the walk never ended")
        ids = [s.task_id for s in walked]
        steady = set(initial) if order.key == "first_seen" else set(initial) - touched
        assert touched and len(steady) >= 20
        repeated = sorted({t for t in ids if ids.count(t) > 1} & steady)
        missing = sorted(steady - set(ids))
        assert not repeated and not missing, f"walked twice: {repeated}; never walked: {missing}"
        if order.key == "first_seen":
            assert not {t for t in ids if ids.count(t) > 1}
            firsts = [(s.first_seen, s.task_id) for s in walked]
            assert firsts == sorted(firsts, reverse=order.descending)

    def test_slowest_tasks_come_first(self, store: ViewWriter, reader: ViewReader) -> None:
        store.write(changes_for(lifecycle("a") + lifecycle("b", status=TaskStatus.FAILURE)))
        slow = reader.slowest_tasks(5)
        assert [s.task_id for s in slow] == ["a"]  # the failure carried no runtime

    def test_finished_before(self, store: ViewWriter, reader: ViewReader) -> None:
        store.write(changes_for(lifecycle("old", at=T0) + lifecycle("new", at=T0 + timedelta(days=1))))
        assert reader.finished_before(T0 + timedelta(hours=1), limit=10) == ["old"]

    def test_in_flight_as_of_lists_the_tasks_unfinished_at_the_instant(self, store: ViewWriter,
                                                                         reader: ViewReader) -> None:  # fmt: skip
        at = T0 + timedelta(seconds=10)

        def s(seconds: float) -> datetime:
            return T0 + timedelta(seconds=seconds)

        late = TaskReceived(task_id="b-late", occurred_at=s(3))  # a skewed clock, after its DONE: DONE outranks it
        events: list[TaskEvent] = [
            *lifecycle("a-done-before", at=s(0)),  # finished at 2 s
            *lifecycle("c-spans", at=s(9)),  # started at 10 s (at the instant), finished at 11 s
            *lifecycle("b-late", at=s(0)), late,
            TaskReceived(task_id="d-received", task_name="app.mul", occurred_at=s(3)),
            TaskStarted(task_id="e-retrying", occurred_at=s(4)), TaskRetried(task_id="e-retrying", occurred_at=s(5)),
            TaskPending(task_id="f-pending", occurred_at=s(6)),
            *lifecycle("g-after", at=s(10.5)),
        ]  # fmt: skip
        project(store, events)
        found = reader.in_flight_as_of(at, limit=100)
        assert found.tasks == [("c-spans", "app.add", TaskStatus.STARTED),
                               ("d-received", "app.mul", TaskStatus.RECEIVED),
                               ("e-retrying", None, TaskStatus.RETRY)]  # fmt: skip
        assert found.total == 3
        counts = reader.status_counts_as_of(at)
        assert found.total == sum(counts.get(x, 0) for x in (TaskStatus.RECEIVED, TaskStatus.STARTED, TaskStatus.RETRY))
        first = reader.in_flight_as_of(at, limit=2)
        assert [t[0] for t in first.tasks] == ["c-spans", "d-received"] and first.total == 3
        assert reader.in_flight_as_of(s(20), limit=10).tasks == [("d-received", "app.mul", TaskStatus.RECEIVED),
                                                                 ("e-retrying", None, TaskStatus.RETRY)]  # fmt: skip
        assert reader.in_flight_as_of(s(-1), limit=10) == InFlight([], 0)
        with pytest.raises(ValueError, match=r"^at: must be timezone-aware"):
            reader.in_flight_as_of(datetime(2026, 1, 2), limit=10)

    def test_periodic_rows_and_their_runs(self, store: ViewWriter, reader: ViewReader) -> None:
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
        assert reader.periodic_tasks() == [state]
        assert store.load_periodic(["nightly"]) == {"nightly": state}
        runs = reader.periodic_runs()["nightly"]
        assert [(r.task_id, r.status) for r in runs] == [("run1", None), ("run2", TaskStatus.FAILURE)]
        columns, rows = store.table_rows("periodic_task_event")
        assert sorted(row[columns.index("type")] for row in rows) == ["periodic.registered"] + [
            "periodic.triggered"
        ] * 2


class MigrationContract(ViewsContract):
    """The migrations build the declared schema, carry rows over, and upgrade the views the
    SQL-file runner of earlier versions left."""

    def test_the_migrations_build_the_schema_declared_once(self, store: ViewWriter) -> None:
        assert isinstance(store, SqlViewWriter)
        with store.database.reading() as conn:
            dialect = conn.dialect.name

            def declared(item: Any, name: str | None, kind: str, reflected: bool, _: Any) -> bool:
                if kind == "table" and (name == "alembic_version" or name in SEARCH_TABLES):
                    return False  # SEARCH_TABLES: SQLite's FTS5 table, which SQLAlchemy cannot declare
                only = getattr(item, "_ddl_if", None)  # an index declared for one database
                return reflected or kind != "index" or only is None or only.dialect == dialect

            context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": declared})
            differences = compare_metadata(context, metadata)
        if dialect == "sqlite":  # SQLite adds a NOT NULL column only with a default (0003)
            first_seen = [("modify_nullable", None, "task_meta", "first_seen")]
            differences = [d for d in differences if not (isinstance(d, list) and [x[:4] for x in d] == first_seen)]
        assert differences == []

    def test_migration_0003_gives_existing_rows_the_first_seen_a_rebuild_gives(self, blank: ViewWriter) -> None:
        assert blank.migrate("0002_history_index") == ["0001_views", "0002_history_index"]
        received = TaskReceived(task_id="skewed", task_name="app.add", occurred_at=T0 + timedelta(seconds=20))
        pending = TaskPending(task_id="skewed", occurred_at=T0 + timedelta(seconds=10))  # logged after
        history = [history_row(Decoded(received, 2, 5)), history_row(Decoded(pending, 2, 7))]
        skewed = fold(history_events(history))
        orphan = fold([(TaskReceived(task_id="orphan", occurred_at=T0 + timedelta(seconds=30)), None),
                       (TaskSucceeded(task_id="orphan", occurred_at=T0 + timedelta(seconds=40)), None)])  # fmt: skip
        assert skewed is not None and orphan is not None
        early = len(TASK_EVENT_COLUMNS) - 1  # fingerprint came with 0006
        self.raw_insert(blank, "task_event", TASK_EVENT_COLUMNS[:early],
                        [task_event_values(r, self.encoding)[:early] for r in history])  # fmt: skip
        later = ("first_seen", "exc_args", *LINKAGE_FIELDS, *DURATIONS, "search_text")  # added by 0003 and after
        kept = [i for i, column in enumerate(TASK_COLUMNS) if column not in later]
        self.raw_insert(blank, "task_meta", [TASK_COLUMNS[i] for i in kept],
                        [tuple(task_values(s, self.encoding)[i] for i in kept) for s in (skewed, orphan)])  # fmt: skip
        assert blank.migrate() == ["0003_first_seen", "0004_exc_args", "0005_linkage", "0006_failure_groups",
                                   "0007_search", "0008_series_counts", "0009_descendants_index",
                                   "0010_status_changed_index", "0011_failure_reopen", "0012_worker_meta",
                                   "0013_gin_pending_list"]  # fmt: skip
        assert skewed.first_seen == received.occurred_at  # the first in the log, not the earliest
        assert skewed.queue_wait == 10.0  # 0005 derives the durations from the stored dates
        with self.reader_for(blank) as reader:
            assert reader.task_state("skewed") == skewed
            assert reader.task_state("orphan") == orphan  # no history left: its earliest known date

    def _legacy(self, blank: ViewWriter, up_to: int, *, rows: bool) -> None:
        sections = legacy_sql(self.backend, up_to)
        statements = [s for _, _, section in sections for s in section]
        versions = [(version, name) for version, name, _ in sections if version]
        found = legacy_rows(self.backend) if rows else {}
        recorded: LegacyRows = ("schema_migrations", ["version", "name"], [list(v) for v in versions])
        self.run_legacy(blank, statements, [recorded, *((t, cols, values) for t, (cols, values) in found.items())])

    def test_views_the_sql_file_runner_made_upgrade_in_place_and_answer_and_write_the_same(
        self, blank: ViewWriter, store: ViewWriter, reader: ViewReader
    ) -> None:
        """``blank`` holds what the stores before Alembic made of ``first_batch()``; ``store``
        gets the same batch from today's writer. Both must answer alike, hold the same
        stored values, and stay alike through a next batch."""
        self._legacy(blank, 4, rows=True)
        # recognised as at 0004: stamped, only the later revisions applied
        assert blank.migrate() == ["0005_linkage", "0006_failure_groups", "0007_search", "0008_series_counts",
                                   "0009_descendants_index", "0010_status_changed_index",
                                   "0011_failure_reopen", "0012_worker_meta",
                                   "0013_gin_pending_list"]  # fmt: skip
        assert blank.migrate() == []
        project(store, first_batch())
        with self.reader_for(blank) as legacy:
            assert_same_answers(legacy, reader)
            done = [(e, i) for i, e in enumerate(first_batch()) if isinstance(e, TaskEvent) and e.task_id == "t-done"]
            assert legacy.task_state("t-done") == fold(done)
            for table in LEGACY_TABLES:
                assert self.raw_rows(blank, table) == self.raw_rows(store, table), table
            assert rollup(blank) == rollup(store)  # 0008 filled it as the writer keeps it
            project(blank, second_batch())
            project(store, second_batch())
            assert_same_answers(legacy, reader)
            for table in LEGACY_TABLES:
                assert self.raw_rows(blank, table) == self.raw_rows(store, table), table
            assert rollup(blank) == rollup(store)
        with blank.database.reading() as conn:  # type: ignore[attr-defined]
            assert "schema_migrations" not in sa.inspect(conn).get_table_names()

    def test_views_an_older_runner_left_half_migrated_get_the_rest(self, blank: ViewWriter) -> None:
        self._legacy(blank, 2, rows=False)
        assert blank.migrate() == ["0003_first_seen", "0004_exc_args", "0005_linkage", "0006_failure_groups",
                                   "0007_search", "0008_series_counts", "0009_descendants_index",
                                   "0010_status_changed_index", "0011_failure_reopen", "0012_worker_meta",
                                   "0013_gin_pending_list"]  # fmt: skip
        assert blank.migrate() == []


LEGACY_TABLES = ("task_meta", "task_event", "periodic_task_meta", "periodic_task_event")
"""Compared as stored (projection_offsets differs only in when it was written)."""


def assert_same_answers(left: ViewReader, right: ViewReader) -> None:
    every = TaskFilter()
    tasks = right.list_tasks(every, after=None, limit=100)
    assert tasks and left.list_tasks(every, after=None, limit=100) == tasks
    for task in tasks:
        assert left.task_state(task.task_id) == task
        assert left.task_events(task.task_id) == right.task_events(task.task_id)
    assert left.status_counts() == right.status_counts()
    assert left.periodic_tasks() == right.periodic_tasks() and left.periodic_runs() == right.periodic_runs()
    assert left.offsets("views", "topic") == right.offsets("views", "topic")
    for seconds in (0, 4, 40, 100):
        at = T0 + timedelta(seconds=seconds)
        assert left.status_counts_as_of(at) == right.status_counts_as_of(at)


def _frames() -> Iterator[FrameType]:
    """The caller's frame and those that called it."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        yield frame
        frame = frame.f_back
