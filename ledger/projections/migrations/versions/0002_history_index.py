"""Time travel (``ViewReader.status_counts_as_of``): "what was each task's status at T?"
ranks each task's events by (attempt, precedence, occurred_at, event_id). This index hands
them over presorted by (task_id, attempt) with status and event_id at hand, so the as-of
query is an index-only scan (no table visits, no full sort); time-bounded reads of one
task's history use it too. PostgreSQL carries status and event_id as INCLUDE columns;
SQLite has no INCLUDE, so there they are trailing key columns."""

from __future__ import annotations

from alembic import op

revision = "0002_history_index"
down_revision = "0001_views"


def upgrade() -> None:
    columns = ["task_id", "attempt", "occurred_at"]
    if op.get_bind().dialect.name == "sqlite":
        op.create_index("task_event_rank_idx", "task_event", [*columns, "status", "event_id"])
    else:
        op.create_index("task_event_rank_idx", "task_event", columns, postgresql_include=["status", "event_id"])
