"""Latency (issue 17): the two GIN indexes of ``task_meta`` (search text, kwargs) flush their
pending list into the index at 256 kB instead of PostgreSQL's 4 MB. Every task row written
adds its entries to that list, and the insert that fills it merges the whole list: one
batch in a few hundred took ~60 ms longer (measured at 1,000 events/s: the upsert's p99
5 ms, its max 60-62 ms). At 256 kB the flushes are sixteen times as frequent and as short
(max 18 ms), the same work in all. SQLite has no such index."""

from __future__ import annotations

from alembic import op

revision = "0013_gin_pending_list"
down_revision = "0012_worker_meta"

GIN_INDEXES = ("task_meta_search_idx", "task_meta_kwargs_idx")
PENDING_LIST_KB = 256


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for index in GIN_INDEXES:
            bind.exec_driver_sql(f"ALTER INDEX {index} SET (gin_pending_list_limit = {PENDING_LIST_KB})")

