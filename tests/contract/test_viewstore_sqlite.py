from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from ledger.projections.sqlite import DIALECT, SqliteViewStore
from ledger.projections.store import ViewStore
from tests.contract.viewstore_contract import ViewStoreContract


class TestSqliteViewStore(ViewStoreContract):
    dialect = DIALECT

    def raw_insert(self, store: ViewStore, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        assert isinstance(store, SqliteViewStore)
        names = ", ".join(f'"{c}"' for c in columns)
        store.conn.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})", rows)

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[ViewStore]:
        store = SqliteViewStore(tmp_path / "views.db")
        assert store.migrate() == ["0001_views", "0002_history_index", "0003_first_seen", "0004_exc_args"]
        yield store
        store.close()

    @pytest.fixture
    def other(self, tmp_path: Path, store: ViewStore) -> Iterator[ViewStore]:
        other = SqliteViewStore(tmp_path / "views.db")
        yield other
        other.close()

    @pytest.fixture
    def blank(self, tmp_path: Path) -> Iterator[ViewStore]:
        blank = SqliteViewStore(tmp_path / "blank.db")
        yield blank
        blank.close()
