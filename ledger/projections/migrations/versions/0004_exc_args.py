"""The exception's args of the latest failure or retry (issue 12): what Celery's result
backends store as exc_message, so task_state() reads like one. Rows from before have none
(their events carried no args): readers fall back to [exc_message], as a rebuild would."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.projections.sqltypes import JsonValue

revision = "0004_exc_args"
down_revision = "0003_first_seen"


def upgrade() -> None:
    op.add_column("task_meta", sa.Column("exc_args", JsonValue))
