import time
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import psycopg2
import pytest
from psycopg2 import sql

from ledger.domain.events import TaskPending
from ledger.projections.postgres import COPY_TEXT, PostgresViewWriter, postgres_reader
from ledger.projections.schema import PRIMARY_KEYS, metadata
from ledger.projections.store import ViewReader, ViewStoreUnavailable, ViewWriter
from tests.contract.failures_contract import FailureGroupsContract
from tests.contract.search_contract import SearchContract
from tests.contract.series_contract import SeriesContract
from tests.contract.viewstore_contract import (
    T0,
    LegacyRows,
    MigrationContract,
    ViewReaderContract,
    ViewsContract,
    ViewWriterContract,
    changes_for,
)
from tests.contract.workers_contract import WorkersContract

pytestmark = pytest.mark.postgres


class PostgresViews(ViewsContract):
    backend = "postgres"
    encoding = COPY_TEXT

    def reader_for(self, store: ViewWriter) -> ViewReader:
        assert isinstance(store, PostgresViewWriter)
        return postgres_reader(store.dsn, store.schema)

    def raw_rows(self, store: ViewWriter, table: str) -> list[tuple[Any, ...]]:
        """Each value's text, in UTC."""
        assert isinstance(store, PostgresViewWriter)
        texts = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c.name))
                                   for c in metadata.tables[table].columns)  # fmt: skip
        query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
            texts, sql.Identifier(store.schema, table), sql.Identifier(PRIMARY_KEYS[table])
        )
        with closing(psycopg2.connect(store.dsn)) as conn, conn, conn.cursor() as cur:
            cur.execute("SET LOCAL TIME ZONE 'UTC'")
            cur.execute(query)
            return cur.fetchall()

    def run_legacy(self, blank: ViewWriter, statements: list[str], rows: list[LegacyRows]) -> None:
        assert isinstance(blank, PostgresViewWriter)
        with closing(psycopg2.connect(blank.dsn)) as conn, conn, conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE SCHEMA {0}; SET LOCAL search_path TO {0}").format(sql.Identifier(blank.schema)))
            for statement in statements:
                cur.execute(statement)
            for table, columns, values in rows:
                names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
                marks = sql.SQL(", ").join(sql.Placeholder() * len(columns))
                cur.executemany(sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(sql.Identifier(table), names, marks),
                                values)  # fmt: skip

    @pytest.fixture
    def store(self, postgres_dsn: str, pg_schema: str) -> Iterator[ViewWriter]:
        store = PostgresViewWriter(postgres_dsn, pg_schema)
        assert store.migrate() == [
            "0001_views", "0002_history_index", "0003_first_seen", "0004_exc_args", "0005_linkage",
            "0006_failure_groups", "0007_search", "0008_series_counts", "0009_descendants_index",
            "0010_status_changed_index", "0011_failure_reopen", "0012_worker_meta", "0013_gin_pending_list",
        ]  # fmt: skip
        yield store
        store.close()

    @pytest.fixture
    def other(self, postgres_dsn: str, pg_schema: str, store: ViewWriter) -> Iterator[ViewWriter]:
        other = PostgresViewWriter(postgres_dsn, pg_schema)
        yield other
        other.close()

    @pytest.fixture
    def blank(self, postgres_dsn: str, pg_schema: str) -> Iterator[ViewWriter]:
        blank = PostgresViewWriter(postgres_dsn, pg_schema + "_blank")
        yield blank
        blank.close()


class TestPostgresViewWriter(PostgresViews, ViewWriterContract):
    pass


class TestPostgresViewReader(PostgresViews, ViewReaderContract):
    pass


class TestPostgresMigrations(PostgresViews, MigrationContract):
    pass


def test_an_unreachable_server_is_named() -> None:
    where = "postgresql://ledger@127.0.0.1:1/ledger"
    for views in (PostgresViewWriter(where, "x", connect_timeout=2), postgres_reader(where, "x", connect_timeout=2)):
        with pytest.raises(ViewStoreUnavailable, match=r"PostgreSQL at 127\.0\.0\.1:1/ledger is not reachable"):
            views.offsets("views", "topic")


class TestPostgresFailureGroups(PostgresViews, FailureGroupsContract):
    """The failure-group queries on Postgres."""


class TestPostgresWorkers(PostgresViews, WorkersContract):
    """The workers view and its queries on Postgres."""


class TestPostgresSeries(PostgresViews, SeriesContract):
    pass


class TestPostgresSearch(PostgresViews, SearchContract):
    """Search on PostgreSQL: the same answers as on every other store."""


class TestPostgresWorkflowPlan(PostgresViews):
    """The workflow closure stays index lookups when a big group is most of the table: the
    planner estimates each recursive step at one key and, with such statistics, chose a
    sequential scan of task_meta per key (25 s for a 10,000-task group among 15,000 rows)."""

    def test_a_group_that_is_most_of_the_table_is_read_by_index(self, store: ViewWriter, reader: ViewReader) -> None:
        assert isinstance(store, PostgresViewWriter)
        members = [f"m{i}" for i in range(600)]
        events = [TaskPending(task_id=m, root_id=m, group_id="big", callback_id="cb", occurred_at=T0) for m in members]
        events += [TaskPending(task_id=f"x{i}", root_id=f"x{i}", occurred_at=T0) for i in range(40)]
        store.write(changes_for(events))
        with closing(psycopg2.connect(store.dsn)) as conn, conn, conn.cursor() as cur:
            cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(store.schema, "task_meta")))
        store.close()  # its backends report their own scans as they exit: wait until they have
        before, settled = (-1, -1), _scans(store)
        while settled != before:
            before = settled
            time.sleep(1.2)
            settled = _scans(store)
        flow = reader.workflow("m7")
        assert flow is not None and len(flow.tasks) == len(members)
        after = before
        for _ in range(100):  # the reader's backend reports its counters when it goes idle (at most each second)
            after = _scans(store)
            if after[1] > before[1]:
                break
            time.sleep(0.1)
        assert after[1] > before[1], "the workflow query's index scans were never reported"
        assert after[0] == before[0], "the workflow query scanned task_meta sequentially"


def _scans(store: PostgresViewWriter) -> tuple[int, int]:
    """(sequential, index) scans of the schema's task_meta so far."""
    with closing(psycopg2.connect(store.dsn)) as conn, conn, conn.cursor() as cur:
        cur.execute("SELECT seq_scan, coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE schemaname = %s "
                    "AND relname = 'task_meta'", (store.schema,))  # fmt: skip
        row = cur.fetchone()
        assert row is not None
        return int(row[0]), int(row[1])


class TestPostgresGinPendingLists(PostgresViews):
    """The GIN indexes flush their pending list at 256 kB (migration 0013): at the default
    4 MB, the batch whose upsert filled it took ~60 ms more, the projector's latency tail."""

    @staticmethod
    def limits(store: PostgresViewWriter) -> dict[str, list[str] | None]:
        with closing(psycopg2.connect(store.dsn)) as conn, conn, conn.cursor() as cur:
            cur.execute("SELECT c.relname, c.reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = %s AND c.relname IN ('task_meta_search_idx', 'task_meta_kwargs_idx')",
                        (store.schema,))  # fmt: skip
            return dict(cur.fetchall())

    def test_after_migrate_and_after_a_bulk_load_that_rebuilt_them(self, store: ViewWriter) -> None:
        assert isinstance(store, PostgresViewWriter)
        expected = {name: ["gin_pending_list_limit=256"] for name in ("task_meta_search_idx", "task_meta_kwargs_idx")}
        assert self.limits(store) == expected
        with store.bulk_loading():
            assert self.limits(store) == {}  # dropped for the load …
            store.write(changes_for([TaskPending(task_id="t1", occurred_at=T0)]))
        assert self.limits(store) == expected  # … and made again as they were
