"""Failure groups (issue 14): each task.failed history row carries its group's fingerprint
(``domain.failures.fingerprint``), set by the projector as it writes the row, so a window's
groups are one GROUP BY over a partial index of the failures, and a rebuild computes the
same fingerprints from the same events. Existing failures get theirs from their stored
payload here (what a rebuild would give). Resolutions (``failures.resolved`` events) are
kept in failure_resolution, one row per group."""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from ledger.domain.failures import fingerprint
from ledger.projections.sqltypes import UtcTimestamp, Uuid

revision = "0006_failure_groups"
down_revision = "0005_linkage"

_BATCH = 5000


def upgrade() -> None:
    op.add_column("task_event", sa.Column("fingerprint", sa.Text))
    _backfill()
    where = sa.text("fingerprint IS NOT NULL")
    for name, columns in (("task_event_failure_time_idx", ["occurred_at", "fingerprint", "task_id"]),
                          ("task_event_failure_group_idx", ["fingerprint", "occurred_at", "task_id"])):  # fmt: skip
        op.create_index(name, "task_event", columns, postgresql_where=where, sqlite_where=where)
    op.create_table(
        "failure_resolution",
        sa.Column("fingerprint", sa.Text, primary_key=True),
        sa.Column("resolved_at", UtcTimestamp, nullable=False),
        sa.Column("resolved_by", sa.Text),
        sa.Column("event_id", Uuid, nullable=False),
    )


def _backfill() -> None:
    event = sa.table("task_event", sa.column("event_id"), sa.column("type"), sa.column("payload"),
                     sa.column("fingerprint"))  # fmt: skip
    conn = op.get_bind()
    rows = conn.execute(sa.select(event.c.event_id, event.c.payload).where(event.c.type == "task.failed")).all()
    update = event.update().where(event.c.event_id == sa.bindparam("b_id")).values(fingerprint=sa.bindparam("b_fp"))
    for start in range(0, len(rows), _BATCH):
        batch = []
        for event_id, payload in rows[start : start + _BATCH]:
            data = payload if isinstance(payload, dict) else json.loads(payload)
            group = fingerprint(data.get("task_name"), data["exc_type"], data.get("exc_message"))
            batch.append({"b_id": event_id, "b_fp": group})
        conn.execute(update, batch)
