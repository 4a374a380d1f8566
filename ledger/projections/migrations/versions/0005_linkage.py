"""Workflow linkage, routing and durations (issue 14): the columns schema version 2 of the
events fills (root, parent, group, chord callback; queue, exchange, routing key, expires)
and the fold's durations (queue wait, start delay, total time), with the indexes a workflow
and a per-queue listing read. Older events carry no linkage, so existing rows have none (as
a rebuild gives); their durations are derived here from their stored dates by the fold's
own rule (``fold.durations``), so the rows equal what a rebuild writes."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.domain.timing import DURATIONS, durations
from ledger.projections.sqltypes import UtcTimestamp

revision = "0005_linkage"
down_revision = "0004_exc_args"

_TEXT = ("root_id", "parent_id", "group_id", "callback_id", "queue", "exchange", "routing_key")
_DATES = ("date_pending", "date_received", "date_started", "date_done")
_BATCH = 5000


def upgrade() -> None:
    for name in _TEXT:
        op.add_column("task_meta", sa.Column(name, sa.Text))
    op.add_column("task_meta", sa.Column("expires", UtcTimestamp))
    for name in DURATIONS:
        op.add_column("task_meta", sa.Column(name, sa.Double))
    for name in ("root_id", "parent_id", "group_id", "callback_id"):
        op.create_index(f"task_meta_{name}_idx", "task_meta", [name])
    op.create_index("task_meta_queue_first_seen_idx", "task_meta",
                    ["queue", sa.text("first_seen DESC"), sa.text("task_id DESC")])  # fmt: skip
    _fill_durations()


def _fill_durations() -> None:
    meta = sa.table("task_meta", sa.column("task_id", sa.Text), sa.column("status", sa.Text),
                    *(sa.column(name, UtcTimestamp) for name in _DATES),
                    *(sa.column(name, sa.Double) for name in DURATIONS))  # fmt: skip
    bind = op.get_bind()
    select = sa.select(meta.c.task_id, meta.c.status, *(meta.c[name] for name in _DATES))
    update = meta.update().where(meta.c.task_id == sa.bindparam("key")).values(
        {name: sa.bindparam(name) for name in DURATIONS})  # fmt: skip
    after = None
    while rows := bind.execute(  # keyset batches: a big table is never held in memory
        (select if after is None else select.where(meta.c.task_id > after)).order_by(meta.c.task_id).limit(_BATCH)
    ).all():
        bind.execute(update, [
            {"key": row[0], **durations(dict(zip(_DATES, row[2:], strict=True)), row[1])} for row in rows
        ])  # fmt: skip
        after = rows[-1][0]
