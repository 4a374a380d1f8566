from collections.abc import Iterator
from contextlib import closing
from typing import Any

import psycopg2
import pytest
from psycopg2 import sql

from ledger.projections.postgres import COPY_TEXT, PostgresViewWriter, postgres_reader
from ledger.projections.schema import PRIMARY_KEYS, metadata
from ledger.projections.store import ViewReader, ViewStoreUnavailable, ViewWriter
from tests.contract.failures_contract import FailureGroupsContract
from tests.contract.search_contract import SearchContract
from tests.contract.series_contract import SeriesContract
from tests.contract.viewstore_contract import (
    LegacyRows,
    MigrationContract,
    ViewReaderContract,
    ViewsContract,
    ViewWriterContract,
)

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
            "0006_failure_groups", "0007_search", "0008_series_counts",
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


class TestPostgresSeries(PostgresViews, SeriesContract):
    pass


class TestPostgresSearch(PostgresViews, SearchContract):
    """Search on PostgreSQL: the same answers as on every other store."""
