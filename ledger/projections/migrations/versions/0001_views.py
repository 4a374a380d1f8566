"""The views of the seed (TaskMeta, PeriodicTaskMeta), their histories and consumed offsets."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.projections.sqltypes import JsonDocument, JsonValue, Status, UtcTimestamp, Uuid

revision = "0001_views"
down_revision = None


def _history(*columns: sa.Column[object]) -> list[sa.Column[object]]:
    return [
        sa.Column("event_id", Uuid, primary_key=True),
        *columns,
        sa.Column("occurred_at", UtcTimestamp, nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("payload", JsonDocument, nullable=False),
    ]


def upgrade() -> None:
    _task_meta()
    _task_event()
    _periodic()
    op.create_table(
        "projection_offsets",
        sa.Column("projection", sa.Text, primary_key=True),
        sa.Column("topic", sa.Text, primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
        sa.Column("updated_at", UtcTimestamp, nullable=False, server_default=sa.func.current_timestamp()),
    )


def _task_meta() -> None:
    op.create_table(
        "task_meta",
        sa.Column("task_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("status", Status, nullable=False),
        sa.Column("result", JsonValue),
        sa.Column("traceback", sa.Text),
        sa.Column("exc_type", sa.Text),
        sa.Column("exc_message", sa.Text),
        sa.Column("retries", sa.Integer, nullable=False),
        sa.Column("args", JsonValue),
        sa.Column("kwargs", JsonValue),
        sa.Column("worker", sa.Text),
        *(sa.Column(name, UtcTimestamp) for name in ("eta", "date_pending", "date_received", "date_started")),
        sa.Column("date_done", UtcTimestamp, nullable=False),
        sa.Column("runtime", sa.Double),
        sa.Column("last_event_id", Uuid, nullable=False),
        sa.Column("last_offset", sa.BigInteger),
    )
    for suffix, columns in (("done", []), ("status", ["status"]), ("name", ["name"]), ("worker", ["worker"])):
        op.create_index(f"task_meta_{suffix}_idx", "task_meta", [*columns, sa.text("date_done DESC"),
                                                                 sa.text("task_id DESC")])  # fmt: skip


def _task_event() -> None:
    op.create_table(
        "task_event",
        *_history(
            sa.Column("task_id", sa.Text, nullable=False),
            sa.Column("type", sa.Text, nullable=False),
            sa.Column("status", sa.Text),
            sa.Column("attempt", sa.Integer, nullable=False),
        ),
    )
    op.create_index("task_event_task_idx", "task_event", ["task_id", "partition", "offset"])
    op.create_index("task_event_time_idx", "task_event", ["occurred_at", "task_id"])


def _periodic() -> None:
    op.create_table(
        "periodic_task_meta",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("task", sa.Text),
        sa.Column("interval_seconds", sa.Double),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("last_run_at", UtcTimestamp),
        sa.Column("total_run_count", sa.Integer, nullable=False),
        sa.Column("last_run_task_id", sa.Text),
        sa.Column("config_at", UtcTimestamp),
        sa.Column("config_event_id", Uuid),
        sa.Column("last_event_id", Uuid, nullable=False),
        sa.Column("registered_at", UtcTimestamp),
        sa.Column("registered_event_id", Uuid),
        sa.Column("last_run_event_id", Uuid),
    )
    op.create_table(
        "periodic_task_event",
        *_history(
            sa.Column("name", sa.Text, nullable=False),
            sa.Column("type", sa.Text, nullable=False),
            sa.Column("task_id", sa.Text),
        ),
    )
    op.create_index("periodic_task_event_name_idx", "periodic_task_event", ["name", "occurred_at"])
    op.create_index("periodic_task_event_run_idx", "periodic_task_event", ["task_id"])
