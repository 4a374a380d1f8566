"""The PostgreSQL half of a rebuild: the shadow views live in their own schema; the swap is
two schema renames in one transaction, taken while an exclusive advisory lock holds the
live projectors' writes back (each of their batches takes it shared), so readers see the
old views or the new ones and no live write is lost: a batch that waited resumes against
the new views, whose offsets are exactly the ones it expects."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
from psycopg2 import sql

from ledger.projections.diff import TABLES
from ledger.projections.postgres import PostgresViewStore, views_lock_name
from ledger.projections.rebuild import CatchUp, Inspect, RebuildInProgress, Swapper
from ledger.projections.store import ViewStore


class PostgresSwapper(Swapper):
    def __init__(self, live: PostgresViewStore) -> None:
        self._live = live
        self.shadow_schema = f"{live.schema}_rebuild"

    @property
    def live(self) -> PostgresViewStore:
        return self._live

    @contextmanager
    def lock(self) -> Iterator[None]:
        name = f"ledger-rebuild:{self.live.schema}"
        conn = psycopg2.connect(self.live.dsn)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (name,))
                (acquired,) = cur.fetchone() or (False,)
            if not acquired:
                raise RebuildInProgress(
                    f"another rebuild of the views in schema {self.live.schema!r} is running "
                    f"(PostgreSQL advisory lock {name!r} is held); wait for it to finish"
                )
            yield
        finally:
            conn.close()  # a session lock ends with its session

    def create_shadow(self) -> ViewStore:
        shadow = PostgresViewStore(self.live.dsn, self.shadow_schema)
        shadow.drop()  # a crashed rebuild's leftovers
        shadow.migrate()
        return shadow

    def swap(self, shadow: ViewStore, catch_up: CatchUp, inspect: Inspect) -> bool:
        assert isinstance(shadow, PostgresViewStore)
        retired = f"{self.live.schema}_retired_{int(time.time())}"
        conn = psycopg2.connect(self.live.dsn)
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (views_lock_name(self.live.schema),))
                catch_up()
                if not inspect():
                    conn.rollback()
                    return False
                rename = sql.SQL("ALTER SCHEMA {} RENAME TO {}")
                cur.execute(rename.format(sql.Identifier(self.live.schema), sql.Identifier(retired)))
                cur.execute(rename.format(sql.Identifier(shadow.schema), sql.Identifier(self.live.schema)))
            with conn, conn.cursor() as cur:
                cur.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(retired)))
        finally:
            conn.close()
        shadow.close()
        self.live.close()  # reconnect: its session may hold cached references to the old tables
        return True

    def rows(self, store: ViewStore, table: str) -> tuple[list[str], Iterator[tuple[object, ...]]]:
        assert isinstance(store, PostgresViewStore) and table in TABLES
        conn = psycopg2.connect(store.dsn)
        cur = conn.cursor(name=f"compare_{table}")  # server-side: streams a million rows
        cur.itersize = 5000
        query = sql.SQL('SELECT * FROM {} ORDER BY {}::text COLLATE "C"').format(
            sql.Identifier(store.schema, table), sql.Identifier(TABLES[table])
        )
        cur.execute(query)
        first = cur.fetchmany(1)
        columns = [d[0] for d in cur.description or ()]

        def stream() -> Iterator[tuple[object, ...]]:
            try:
                yield from first
                yield from cur
            finally:
                cur.close()
                conn.close()

        return columns, stream()
