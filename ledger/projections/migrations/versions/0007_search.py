"""Search (issue 14): each task row carries its search document (``domain.search``), written
by every write path with the row, so live projection and a rebuild store the same text;
existing rows get theirs here, from their stored values.

The index differs per database, the matching rule does not (a case-folded substring per
term, checked on the stored document):
- PostgreSQL: a GIN trigram index (``pg_trgm``, a trusted extension since PostgreSQL 13, so
  the views' owner can install it; one per database, in schema ``public``, so dropping a
  views schema never drops it) serving ``LIKE '%term%'``, and a GIN ``jsonb_path_ops`` index
  on kwargs serving the kwarg filters' containment.
- SQLite: an FTS5 table with the trigram tokenizer (SQLite 3.34+), case-sensitive since the
  document is already folded, whose content is task_meta's column (external content):
  triggers keep it in step with every insert, update and delete of a row.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from ledger.domain.search import search_document
from ledger.projections.sqltypes import JsonValue

revision = "0007_search"
down_revision = "0006_failure_groups"

_BATCH = 5000
_SOURCES = ("task_id", "name", "args", "kwargs", "result", "exc_type", "exc_message")
_JSON = frozenset({"args", "kwargs", "result"})
_SQLITE = (
    "CREATE VIRTUAL TABLE task_search USING fts5(search_text, content='task_meta', content_rowid='rowid', "
    "tokenize='trigram case_sensitive 1')",
    "INSERT INTO task_search(task_search) VALUES ('rebuild')",
    "CREATE TRIGGER task_search_insert AFTER INSERT ON task_meta BEGIN "
    "INSERT INTO task_search(rowid, search_text) VALUES (new.rowid, new.search_text); END",
    "CREATE TRIGGER task_search_delete AFTER DELETE ON task_meta BEGIN "
    "INSERT INTO task_search(task_search, rowid, search_text) VALUES ('delete', old.rowid, old.search_text); END",
    "CREATE TRIGGER task_search_update AFTER UPDATE OF search_text ON task_meta "
    "WHEN old.search_text IS NOT new.search_text BEGIN "
    "INSERT INTO task_search(task_search, rowid, search_text) VALUES ('delete', old.rowid, old.search_text); "
    "INSERT INTO task_search(rowid, search_text) VALUES (new.rowid, new.search_text); END",
)


def upgrade() -> None:
    bind = op.get_bind()
    op.add_column("task_meta", sa.Column("search_text", sa.Text))
    _fill(bind)
    if bind.dialect.name == "postgresql":
        _trigram_extension(bind)
        op.create_index("task_meta_search_idx", "task_meta", ["search_text"], postgresql_using="gin",
                        postgresql_ops={"search_text": "public.gin_trgm_ops"})  # fmt: skip
        # LIKE's estimate is never below 1 / the histogram's size: at the default (100) a rare
        # term reads as 1 % of the rows, and the planner walks the list order through all of
        # them (1.2 s at 1M rows) instead of asking the index (9 ms)
        bind.exec_driver_sql("ALTER TABLE task_meta ALTER COLUMN search_text SET STATISTICS 1000")
        op.create_index("task_meta_kwargs_idx", "task_meta", ["kwargs"], postgresql_using="gin",
                        postgresql_ops={"kwargs": "jsonb_path_ops"})  # fmt: skip
    else:
        for statement in _SQLITE:
            bind.exec_driver_sql(statement)


def _trigram_extension(bind: sa.Connection) -> None:
    """Once per database; two schemas migrating at once take turns (one lock per database)."""
    bind.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('ledger-extension:pg_trgm'))")
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
    except sa.exc.DBAPIError as exc:
        raise RuntimeError(
            f"migration 0007 needs PostgreSQL's pg_trgm extension in schema public and could not create it "
            f"({str(exc.orig).strip()}): run `CREATE EXTENSION pg_trgm WITH SCHEMA public` as its owner, then migrate"
        ) from exc


def _fill(bind: sa.Connection) -> None:
    """Keyset batches: a big table is never held in memory."""
    meta = sa.table("task_meta", *(sa.column(n, JsonValue if n in _JSON else sa.Text) for n in _SOURCES),
                    sa.column("search_text", sa.Text))  # fmt: skip
    select = sa.select(*(meta.c[n] for n in _SOURCES)).order_by(meta.c.task_id).limit(_BATCH)
    after = None
    while rows := bind.execute(select if after is None else select.where(meta.c.task_id > after)).all():
        _store(bind, meta, [(row[0], search_document(*row)) for row in rows])
        after = rows[-1][0]


def _store(bind: sa.Connection, meta: Any, documents: list[tuple[str, str]]) -> None:
    if bind.dialect.name == "postgresql":  # one statement per batch (psycopg2's executemany loops)
        keys, texts = (sa.literal(list(column), postgresql.ARRAY(sa.Text)) for column in zip(*documents, strict=True))
        given = sa.select(sa.func.unnest(keys).label("key"), sa.func.unnest(texts).label("doc")).subquery()
        bind.execute(meta.update().where(meta.c.task_id == given.c.key).values(search_text=given.c.doc))
    else:
        update = meta.update().where(meta.c.task_id == sa.bindparam("key")).values(search_text=sa.bindparam("doc"))
        bind.execute(update, [{"key": key, "doc": doc} for key, doc in documents])
