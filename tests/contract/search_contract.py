"""Search (``TaskFilter``'s text and structured fields, through ``TaskQueries.list_tasks``):
every view store gives the same answers in the same order, PostgreSQL and SQLite, for rows
written live, updated, deleted, written before the migration, and after a rebuild (the
rebuild test in tests/integration/test_rebuild.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ledger.domain.events import AnyEvent, TaskEvent, TaskExpired, TaskFailed, TaskPending, TaskRetried, TaskSucceeded
from ledger.projections import search_sql
from ledger.projections.bulk import TASK_COLUMNS, task_values
from ledger.projections.queries import TaskQueries
from ledger.projections.store import TaskFilter, ViewReader, ViewWriter
from tests.contract.viewstore_contract import ViewsContract, changes_for, project

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
BIG = "x" * 600_000 + " needle-at-the-end"


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def corpus() -> list[AnyEvent]:
    """Eight tasks, newest (highest minute) first in every listing."""
    return [
        TaskPending(task_id="inv-1", task_name="billing.Invoice", args=[42, "École"], kwargs={"user_id": 42},
                    queue="billing", occurred_at=at(1)),
        TaskSucceeded(task_id="inv-1", result={"total": "99.50 EUR"}, runtime=1.5, occurred_at=at(2)),
        TaskPending(task_id="inv-2", task_name="billing.invoice", kwargs={"user_id": 42.0, "flag": True},
                    queue="billing", root_id="inv-1", parent_id="inv-1", occurred_at=at(3)),
        TaskFailed(task_id="inv-2", exc_type="TimeoutError", exc_message="no reply from 'bank' after 30s",
                   runtime=30.0, occurred_at=at(4)),
        TaskPending(task_id="mail-3", task_name="mail.send", kwargs={"user_id": "42", "flag": 1, "note": None},
                    args=["50% off_sale \\o/", 'say "hi"'], queue="mail", occurred_at=at(5)),
        TaskRetried(task_id="mail-3", exc_type="SMTPError", exc_message="try later", occurred_at=at(6)),
        TaskPending(task_id="mail-4", task_name="mail.send", kwargs={"user_id": [42], "nested": {"user_id": 42}},
                    queue="mail", root_id="inv-1", parent_id="inv-2", occurred_at=at(7)),
        TaskSucceeded(task_id="mail-4", attempt=2, result="sent", runtime=0.2, occurred_at=at(8)),
        TaskPending(task_id="big-5", task_name="bulk.load", kwargs={"blob": BIG}, occurred_at=at(9)),
        TaskPending(task_id="plain-6", task_name="reports.build", args=["sale"], root_id="plain-6",
                    occurred_at=at(10)),
    ]  # fmt: skip


EXPECTED: list[tuple[TaskFilter, list[str]]] = [
    (TaskFilter(text="invoice"), ["inv-2", "inv-1"]),  # name, any case
    (TaskFilter(text="INV-2"), ["inv-2"]),  # the id
    (TaskFilter(text="école"), ["inv-1"]),  # args, non-ASCII case-folded
    (TaskFilter(text="user_id"), ["mail-4", "mail-3", "inv-2", "inv-1"]),  # kwargs' keys
    (TaskFilter(text="99.50"), ["inv-1"]),  # the result
    (TaskFilter(text="timeouterror"), ["inv-2"]),  # the exception's type
    (TaskFilter(text="'bank'"), ["inv-2"]),  # and message, quotes included
    (TaskFilter(text="smtperror later"), ["mail-3"]),  # every term must occur
    (TaskFilter(text="smtperror sent"), []),
    (TaskFilter(text="50%"), ["mail-3"]),  # LIKE's wildcards are plain characters
    (TaskFilter(text="off_sale"), ["mail-3"]),
    (TaskFilter(text="f_s"), ["mail-3"]),
    (TaskFilter(text="\\o/"), ["mail-3"]),
    (TaskFilter(text='"hi'), ["mail-3"]),  # an FTS5 quote is a plain character too
    (TaskFilter(text="sale"), ["plain-6", "mail-3"]),
    (TaskFilter(text="send\nmail-3"), ["mail-3"]),  # whitespace separates terms
    (TaskFilter(text="inv-1\nbilling"), ["inv-1"]),
    (TaskFilter(text="needle-at-the-end"), ["big-5"]),  # nothing is cut from a big value
    (TaskFilter(text="mail.send", statuses=()), ["mail-4", "mail-3"]),
    (TaskFilter(kwargs=(("user_id", 42),)), ["inv-2", "inv-1"]),  # 42 == 42.0, never "42" nor [42]
    (TaskFilter(kwargs=(("user_id", "42"),)), ["mail-3"]),
    (TaskFilter(kwargs=(("flag", True),)), ["inv-2"]),  # true is not 1
    (TaskFilter(kwargs=(("flag", 1),)), ["mail-3"]),
    (TaskFilter(kwargs=(("note", None),)), ["mail-3"]),  # a key holding null, not a missing key
    (TaskFilter(kwargs=(("user_id", 42), ("flag", True))), ["inv-2"]),
    (TaskFilter(queue="mail"), ["mail-4", "mail-3"]),
    (TaskFilter(root_id="inv-1"), ["mail-4", "inv-2"]),
    (TaskFilter(root_id="plain-6"), ["plain-6"]),  # a task its own root names it too
    (TaskFilter(parent_id="inv-2"), ["mail-4"]),
    (TaskFilter(runtime_above=1.5), ["inv-2"]),  # strict bounds
    (TaskFilter(runtime_below=1.5), ["mail-4"]),
    (TaskFilter(runtime_above=0.2, runtime_below=30.0), ["inv-1"]),
    (TaskFilter(retried=True), ["mail-4", "mail-3"]),  # in RETRY now, or past the first attempt
    (TaskFilter(text="send", retried=True, queue="mail", kwargs=(("user_id", "42"),)), ["mail-3"]),
    (TaskFilter(text="billing", since=at(3), until=at(5)), ["inv-2"]),
]


class SearchContract(ViewsContract):
    def test_each_filter_selects_the_same_tasks_in_list_order(self, store: ViewWriter, reader: ViewReader) -> None:
        project(store, corpus())
        queries = TaskQueries(reader)
        answers = {repr(where): _ids(queries, where) for where, _ in EXPECTED}
        assert answers == {repr(where): ids for where, ids in EXPECTED}

    def test_a_search_pages_with_the_cursor_like_any_listing(self, store: ViewWriter, reader: ViewReader) -> None:
        project(store, corpus())
        queries, where = TaskQueries(reader), TaskFilter(text="user_id")
        walked: list[str] = []
        cursor = None
        while True:
            page = queries.list_tasks(where, cursor=cursor, limit=1)
            walked += [s.task_id for s in page.items]
            if (cursor := page.next_cursor) is None:
                break
        assert walked == ["mail-4", "mail-3", "inv-2", "inv-1"]

    @pytest.mark.parametrize("probe", [1, 2, 3, 5000])
    def test_the_probe_and_the_whole_query_give_the_same_pages(
        self, store: ViewWriter, reader: ViewReader, probe: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """However many rows the probe reads, each page is the rule's (``search_sql``)."""
        monkeypatch.setattr(search_sql, "PROBE_ROWS", probe)
        project(store, corpus())
        queries = TaskQueries(reader)
        assert {repr(w): _ids(queries, w) for w, _ in EXPECTED} == {repr(w): ids for w, ids in EXPECTED}
        for limit in (1, 2, 3):
            walked, cursor = [], None
            while True:
                page = queries.list_tasks(TaskFilter(text="user_id"), cursor=cursor, limit=limit)
                walked += [s.task_id for s in page.items]
                if (cursor := page.next_cursor) is None:
                    break
            assert walked == ["mail-4", "mail-3", "inv-2", "inv-1"], (probe, limit)

    def test_the_index_follows_updates_and_deletions(self, store: ViewWriter, reader: ViewReader) -> None:
        project(store, corpus())
        queries = TaskQueries(reader)
        project(store, [TaskSucceeded(task_id="mail-3", attempt=1, result="delivered", occurred_at=at(11))])
        assert _ids(queries, TaskFilter(text="delivered")) == ["mail-3"]
        assert _ids(queries, TaskFilter(text="smtperror")) == []  # the retry's exception is gone from the row
        project(store, [TaskExpired(task_id="inv-1", expired_before=at(20), occurred_at=at(30))])
        assert _ids(queries, TaskFilter(text="invoice")) == ["inv-2"]
        assert _ids(queries, TaskFilter(kwargs=(("user_id", 42),))) == ["inv-2"]

    def test_rows_stored_before_the_migration_become_searchable(self, blank: ViewWriter) -> None:
        assert "0006_failure_groups" in blank.migrate("0006_failure_groups")
        states = changes_for(
            [e for e in corpus() if isinstance(e, TaskEvent) and e.task_id in {"inv-1", "mail-3"}]
        ).tasks
        early = TASK_COLUMNS.index("search_text")
        self.raw_insert(blank, "task_meta", TASK_COLUMNS[:early],
                        [task_values(s, self.encoding)[:early] for s in states])  # fmt: skip
        assert blank.migrate() == ["0007_search", "0008_series_counts", "0009_descendants_index",
                                   "0010_status_changed_index", "0011_failure_reopen",
                                   "0012_worker_meta", "0013_gin_pending_list"]
        with self.reader_for(blank) as reader:
            queries = TaskQueries(reader)
            assert _ids(queries, TaskFilter(text="école")) == ["inv-1"]
            assert _ids(queries, TaskFilter(text="SMTPError")) == ["mail-3"]
            assert _ids(queries, TaskFilter(kwargs=(("user_id", 42),))) == ["inv-1"]
        project(blank, [TaskSucceeded(task_id="mail-3", attempt=1, result="delivered", occurred_at=at(11))])
        with self.reader_for(blank) as reader:  # and later writes keep the migrated index right
            assert _ids(TaskQueries(reader), TaskFilter(text="delivered")) == ["mail-3"]
            assert _ids(TaskQueries(reader), TaskFilter(text="smtperror")) == []


def _ids(queries: TaskQueries, where: TaskFilter) -> list[str]:
    return [s.task_id for s in queries.list_tasks(where, limit=100).items]
