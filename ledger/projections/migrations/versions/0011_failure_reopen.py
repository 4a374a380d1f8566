"""Reopening a failure group (``failures.reopened``): failure_resolution keeps each group's
latest reopen beside its latest resolution, so a row may hold a reopen and no resolution
(``resolved_at`` nullable). ``event_id``, read by nothing (a batch orders its decisions in
memory), goes. Batch mode: SQLite changes a column's nullability by copying the table,
which holds a row per resolved group, no more."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.projections.sqltypes import UtcTimestamp, Uuid

revision = "0011_failure_reopen"
down_revision = "0010_status_changed_index"


def upgrade() -> None:
    with op.batch_alter_table("failure_resolution") as table:
        table.alter_column("resolved_at", existing_type=UtcTimestamp, nullable=True)
        table.drop_column("event_id", existing_type=Uuid)
        table.add_column(sa.Column("reopened_at", UtcTimestamp))
        table.add_column(sa.Column("reopened_by", sa.Text))
