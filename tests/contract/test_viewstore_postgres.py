from collections.abc import Iterator, Sequence
from typing import Any

import psycopg2.extras
import pytest

from ledger.projections.postgres import DIALECT, PostgresViewStore
from ledger.projections.store import ViewStore, ViewStoreUnavailable
from tests.contract.viewstore_contract import ViewStoreContract

pytestmark = pytest.mark.postgres


class TestPostgresViewStore(ViewStoreContract):
    dialect = DIALECT

    def raw_insert(self, store: ViewStore, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        assert isinstance(store, PostgresViewStore)
        names = ", ".join(f'"{c}"' for c in columns)
        with store.conn, store.conn.cursor() as cur:
            psycopg2.extras.execute_values(cur, f"INSERT INTO {table} ({names}) VALUES %s", rows)

    @pytest.fixture
    def store(self, postgres_dsn: str, pg_schema: str) -> Iterator[ViewStore]:
        store = PostgresViewStore(postgres_dsn, pg_schema)
        assert store.migrate() == ["0001_views", "0002_history_index", "0003_first_seen", "0004_exc_args"]
        yield store
        store.close()

    @pytest.fixture
    def other(self, postgres_dsn: str, pg_schema: str, store: ViewStore) -> Iterator[ViewStore]:
        other = PostgresViewStore(postgres_dsn, pg_schema)
        yield other
        other.close()

    @pytest.fixture
    def blank(self, postgres_dsn: str, pg_schema: str) -> Iterator[ViewStore]:
        blank = PostgresViewStore(postgres_dsn, pg_schema)
        yield blank
        blank.close()


def test_an_unreachable_server_is_named() -> None:
    store = PostgresViewStore("postgresql://ledger@127.0.0.1:1/ledger", "x", connect_timeout=2)
    with pytest.raises(ViewStoreUnavailable, match=r"PostgreSQL at 127\.0\.0\.1:1/ledger is not reachable"):
        store.offsets("views", "topic")
