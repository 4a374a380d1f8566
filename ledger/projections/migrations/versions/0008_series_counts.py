"""Trends (issue 14): ``series_counts``, the counted transitions of the history per minute
(``projections/series_rollup.py``), filled here from the stored history by the same GROUP
BY the projector keeps it equal to, so the rows equal what a rebuild writes."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.domain.series import COUNTED

revision = "0008_series_counts"
down_revision = "0007_search"

# whole seconds since the epoch of a stored time, as ``Database.whole_seconds`` computes them
_WHOLE_SECONDS = {
    "postgresql": "CAST(floor(date_part('epoch', occurred_at)) AS BIGINT)",
    "sqlite": "CAST(strftime('%s', substr(occurred_at, 1, 19)) AS INTEGER)",
}


def upgrade() -> None:
    op.create_table(
        "series_counts",
        sa.Column("minute", sa.BigInteger, primary_key=True),
        sa.Column("status", sa.Text, primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
    )
    conn = op.get_bind()
    minute = f"{_WHOLE_SECONDS[conn.dialect.name]} / 60 * 60"
    statuses = ", ".join(f"'{status.value}'" for status in COUNTED)
    conn.execute(sa.text(
        f"INSERT INTO series_counts (minute, status, count) SELECT {minute}, status, count(*) FROM task_event "
        f"WHERE status IN ({statuses}) GROUP BY {minute}, status"
    ))  # fmt: skip
