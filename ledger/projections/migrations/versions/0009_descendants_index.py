"""Workflow reads (issue 14): the root index holds only the tasks under another root.

A workflow's group of 10,000 members probes the root index once per member, and each
member (its own root) found itself there: a heap visit per probe, half of the query. A
task that is its own root is found by its primary key instead, so the index leaves those
rows out (most tasks are standalone: it shrinks too), and the chord callback index, which
no query reads, goes: each index costs every projected write."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_descendants_index"
down_revision = "0008_series_counts"


def upgrade() -> None:
    op.drop_index("task_meta_root_id_idx", "task_meta")
    op.drop_index("task_meta_callback_id_idx", "task_meta")
    where = sa.text("root_id <> task_id")
    op.create_index("task_meta_descendants_idx", "task_meta", ["root_id"], postgresql_where=where, sqlite_where=where)
