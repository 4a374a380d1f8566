"""Keyset pages on an immutable key (issue 12): ``first_seen`` is the occurred_at of the
task's first event in log order and never changes once the task exists. date_done moves
with every status change (backwards too, from a worker whose clock is behind), so pages
ordered by it repeated or skipped tasks that changed during a walk. Existing rows take it
from their stored history (what a rebuild computes), else from their earliest known date.

SQLite adds a NOT NULL column only with a default: the column stays nullable there, and
every row the writers store sets it. task_meta_done_idx (date_done, task_id) stays:
since/until, expiry and the stuck-task prefilter select on date_done."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.projections.sqltypes import UtcTimestamp

revision = "0003_first_seen"
down_revision = "0002_history_index"


def upgrade() -> None:
    op.add_column("task_meta", sa.Column("first_seen", UtcTimestamp))
    meta = sa.table("task_meta", *(sa.column(c) for c in ("task_id", "first_seen", "date_pending", "date_received",
                                                           "date_started", "date_done")))  # fmt: skip
    event = sa.table("task_event", *(sa.column(c) for c in ("task_id", "occurred_at", "partition", "offset")))
    first_logged = (
        sa.select(event.c.occurred_at).where(event.c.task_id == meta.c.task_id)
        .order_by(event.c.partition, event.c.offset).limit(1).scalar_subquery()
    )  # fmt: skip
    earliest = (meta.c.date_pending, meta.c.date_received, meta.c.date_started, meta.c.date_done)
    op.execute(meta.update().values(first_seen=sa.func.coalesce(first_logged, *earliest)))
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("task_meta", "first_seen", nullable=False)
    for column in ("status", "name", "worker"):
        op.drop_index(f"task_meta_{column}_idx", "task_meta")
    op.create_index("task_meta_first_seen_idx", "task_meta", [sa.text("first_seen DESC"), sa.text("task_id DESC")])
    for column in ("status", "name", "worker"):
        op.create_index(f"task_meta_{column}_first_seen_idx", "task_meta",
                        [column, sa.text("first_seen DESC"), sa.text("task_id DESC")])  # fmt: skip
