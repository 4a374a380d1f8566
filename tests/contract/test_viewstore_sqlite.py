from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.projections.sqlite import SqliteViewStore
from ledger.projections.store import ViewStore
from tests.contract.viewstore_contract import ViewStoreContract


class TestSqliteViewStore(ViewStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[ViewStore]:
        store = SqliteViewStore(tmp_path / "views.db")
        assert store.migrate() == ["0001_views", "0002_history_index"]
        yield store
        store.close()
