"""The views' schema migrations: Alembic revisions (``versions/``, one small file per
change), each written once for PostgreSQL and SQLite.

``upgrade`` runs them on a connection the caller holds in a transaction (and under the
caller's lock), so a migration is all or nothing. Views migrated before Alembic (by the
SQL-file runner, table ``schema_migrations`` with versions 1 to 4) are recognised first: the
revision of the same number is stamped, the old table dropped, and the upgrade goes on
from there, so an old file or schema upgrades in place.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

__all__ = ["LEGACY_REVISIONS", "pending", "upgrade"]

HERE = Path(__file__).parent

LEGACY_REVISIONS = {1: "0001_views", 2: "0002_history_index", 3: "0003_first_seen", 4: "0004_exc_args"}
"""The revision that does what each version of the SQL-file runner did."""


def _config(conn: Connection, schema: str | None, applied: list[str]) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes.update(connection=conn, version_table_schema=schema, applied=applied)
    return config


def _script() -> ScriptDirectory:
    return ScriptDirectory(str(HERE))


def upgrade(conn: Connection, target: str = "head", *, schema: str | None = None) -> list[str]:
    """Bring the views on ``conn`` (version table in ``schema``, None: the default) to
    ``target``; returns the revisions applied, in order."""
    _bridge_legacy(conn, schema)
    applied: list[str] = []
    command.upgrade(_config(conn, schema, applied), target)
    return applied


def pending(conn: Connection, *, schema: str | None = None) -> bool:
    """Whether ``upgrade`` would change anything, read without writing."""
    tables = set(inspect(conn).get_table_names(schema=schema))
    if "alembic_version" not in tables:
        return True
    context = MigrationContext.configure(conn, opts={"version_table_schema": schema})
    return set(context.get_current_heads()) != set(_script().get_heads())


def _bridge_legacy(conn: Connection, schema: str | None) -> None:
    tables = set(inspect(conn).get_table_names(schema=schema))
    if "schema_migrations" not in tables or "alembic_version" in tables:
        return
    done = {v for (v,) in conn.execute(text("SELECT version FROM schema_migrations"))}
    reached = 0
    while reached + 1 in done and reached + 1 in LEGACY_REVISIONS:
        reached += 1
    if reached:
        context = MigrationContext.configure(conn, opts={"version_table_schema": schema})
        context.stamp(_script(), LEGACY_REVISIONS[reached])
    conn.execute(text("DROP TABLE schema_migrations"))
