from collections.abc import Iterator

import pytest

from ledger.projections.postgres import PostgresViewStore
from ledger.projections.store import ViewStore, ViewStoreUnavailable
from tests.contract.viewstore_contract import ViewStoreContract

pytestmark = pytest.mark.postgres


class TestPostgresViewStore(ViewStoreContract):
    @pytest.fixture
    def store(self, postgres_dsn: str, pg_schema: str) -> Iterator[ViewStore]:
        store = PostgresViewStore(postgres_dsn, pg_schema)
        assert store.migrate() == ["0001_views", "0002_history_index"]
        yield store
        store.close()


def test_an_unreachable_server_is_named() -> None:
    store = PostgresViewStore("postgresql://ledger@127.0.0.1:1/ledger", "x", connect_timeout=2)
    with pytest.raises(ViewStoreUnavailable, match=r"PostgreSQL at 127\.0\.0\.1:1/ledger is not reachable"):
        store.offsets("views", "topic")
