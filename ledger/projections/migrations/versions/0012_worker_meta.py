"""Workers (issue 16): worker_meta, one row per Celery worker hostname, merged from its
``worker.online``, ``worker.heartbeat`` and ``worker.offline`` events
(``domain.workers.WorkerState``). Heartbeats keep no history: the row is all they change.
Existing views had no worker events to project (the type did not exist), so the table
starts empty, as a rebuild of such a log would leave it."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.projections.sqltypes import JsonValue, UtcTimestamp, Uuid

revision = "0012_worker_meta"
down_revision = "0011_failure_reopen"


def upgrade() -> None:
    op.create_table(
        "worker_meta",
        sa.Column("hostname", sa.Text, primary_key=True),
        sa.Column("first_seen", UtcTimestamp, nullable=False),
        sa.Column("last_seen", UtcTimestamp, nullable=False),
        sa.Column("last_heartbeat", UtcTimestamp),
        sa.Column("offline_at", UtcTimestamp),
        sa.Column("freq", sa.Double),
        sa.Column("sw_ident", sa.Text),
        sa.Column("sw_ver", sa.Text),
        sa.Column("sw_sys", sa.Text),
        sa.Column("loadavg", JsonValue),
        sa.Column("processed", sa.BigInteger),
        sa.Column("active", sa.Integer),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("last_event_id", Uuid, nullable=False),
    )
