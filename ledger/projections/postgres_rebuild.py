"""The PostgreSQL half of a rebuild: the shadow views live in their own schema; the swap is
two schema renames in one transaction, taken while an exclusive advisory lock holds the
live projectors' writes back (each of their batches takes it shared), so readers see the
old views or the new ones and no live write is lost: a batch that waited resumes against
the new views, whose offsets are exactly the ones it expects. Every connection comes from
``postgres.connect`` (its timeout, its errors)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing, contextmanager

import psycopg2.extensions
from psycopg2 import sql

from ledger.projections.postgres import PostgresViewWriter, connect, views_lock_name
from ledger.projections.rebuild import CatchUp, Inspect, RebuildInProgress, Swapper
from ledger.projections.store import ViewWriter


class PostgresSwapper(Swapper):
    def __init__(self, live: PostgresViewWriter) -> None:
        self._live = live
        self.shadow_schema = f"{live.schema}_rebuild"

    @property
    def live(self) -> PostgresViewWriter:
        return self._live

    def _connect(self) -> psycopg2.extensions.connection:
        return connect(self.live.dsn, self.live.schema, self.live.database.timeout)

    @contextmanager
    def lock(self) -> Iterator[None]:
        name = f"ledger-rebuild:{self.live.schema}"
        with closing(self._connect()) as conn:  # a session lock ends with its session
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (name,))
                (acquired,) = cur.fetchone() or (False,)
            if not acquired:
                raise RebuildInProgress(
                    f"another rebuild of the views in schema {self.live.schema!r} is running "
                    f"(PostgreSQL advisory lock {name!r} is held); wait for it to finish"
                )
            yield

    def create_shadow(self) -> ViewWriter:
        shadow = PostgresViewWriter(self.live.dsn, self.shadow_schema, connect_timeout=self.live.database.timeout)
        shadow.drop()  # a crashed rebuild's leftovers
        shadow.migrate()
        return shadow

    def swap(self, shadow: ViewWriter, catch_up: CatchUp, inspect: Inspect) -> bool:
        assert isinstance(shadow, PostgresViewWriter)
        retired = f"{self.live.schema}_retired_{int(time.time())}"
        with closing(self._connect()) as conn:
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
        shadow.close()
        self.live.close()  # reconnect: its session may hold cached references to the old tables
        return True
