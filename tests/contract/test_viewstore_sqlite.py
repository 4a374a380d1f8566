import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from ledger.domain.events import TaskExpired, TaskSucceeded
from ledger.projections.schema import PRIMARY_KEYS
from ledger.projections.sqlite import EXECUTEMANY, SqliteViewWriter, sqlite_reader
from ledger.projections.store import ViewReader, ViewWriter
from tests.contract.failures_contract import FailureGroupsContract
from tests.contract.search_contract import SearchContract, at, corpus
from tests.contract.series_contract import SeriesContract
from tests.contract.viewstore_contract import (
    LegacyRows,
    MigrationContract,
    ViewReaderContract,
    ViewsContract,
    ViewWriterContract,
    project,
)


class SqliteViews(ViewsContract):
    backend = "sqlite"
    encoding = EXECUTEMANY

    def reader_for(self, store: ViewWriter) -> ViewReader:
        assert isinstance(store, SqliteViewWriter)
        return sqlite_reader(store.path)

    def raw_rows(self, store: ViewWriter, table: str) -> list[tuple[Any, ...]]:
        assert isinstance(store, SqliteViewWriter)
        with closing(sqlite3.connect(store.path)) as conn:
            return conn.execute(f"SELECT * FROM {table} ORDER BY {PRIMARY_KEYS[table]}").fetchall()

    def run_legacy(self, blank: ViewWriter, statements: list[str], rows: list[LegacyRows]) -> None:
        assert isinstance(blank, SqliteViewWriter)
        with closing(sqlite3.connect(blank.path)) as conn, conn:
            for statement in statements:
                conn.execute(statement)
            for table, columns, values in rows:
                names = ", ".join(f'"{c}"' for c in columns)
                conn.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})", values)

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[ViewWriter]:
        store = SqliteViewWriter(tmp_path / "views.db")
        assert store.migrate() == [
            "0001_views", "0002_history_index", "0003_first_seen", "0004_exc_args", "0005_linkage",
            "0006_failure_groups", "0007_search", "0008_series_counts",
        ]  # fmt: skip
        yield store
        store.close()

    @pytest.fixture
    def other(self, tmp_path: Path, store: ViewWriter) -> Iterator[ViewWriter]:
        other = SqliteViewWriter(tmp_path / "views.db")
        yield other
        other.close()

    @pytest.fixture
    def blank(self, tmp_path: Path) -> Iterator[ViewWriter]:
        blank = SqliteViewWriter(tmp_path / "blank.db")
        yield blank
        blank.close()


class TestSqliteViewWriter(SqliteViews, ViewWriterContract):
    pass


class TestSqliteViewReader(SqliteViews, ViewReaderContract):
    pass


class TestSqliteMigrations(SqliteViews, MigrationContract):
    pass


class TestSqliteFailureGroups(SqliteViews, FailureGroupsContract):
    """The failure-group queries on Sqlite."""


class TestSqliteSeries(SqliteViews, SeriesContract):
    pass


class TestSqliteSearch(SqliteViews, SearchContract):
    """Search on SQLite: the same answers as on every other store."""

    def test_the_fts_index_matches_the_rows_after_updates_and_deletions(self, store: ViewWriter) -> None:
        """The rule's recheck would hide stale index entries from the answers: FTS5's own
        integrity check against task_meta (rank 1: the external content too) does not."""
        assert isinstance(store, SqliteViewWriter)
        project(store, corpus())
        project(store, [TaskSucceeded(task_id="mail-3", attempt=1, result="delivered", occurred_at=at(11)),
                        TaskExpired(task_id="inv-1", expired_before=at(20), occurred_at=at(30))])  # fmt: skip
        with closing(sqlite3.connect(store.path)) as conn, conn:
            conn.execute("INSERT INTO task_search(task_search, rank) VALUES ('integrity-check', 1)")
            matched = "SELECT rowid FROM task_search WHERE task_search MATCH '\"delivered\"'"
            found = conn.execute(f"SELECT task_id FROM task_meta WHERE rowid IN ({matched})").fetchall()
        assert found == [("mail-3",)]
