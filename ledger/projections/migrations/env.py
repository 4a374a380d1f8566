"""Alembic's environment: runs the revisions on the connection ``migrations.upgrade``
hands over (in its transaction), and records each revision applied."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo

from ledger.projections.schema import metadata

config = context.config
applied: list[str] = config.attributes["applied"]


def _record(ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]) -> None:
    if step.is_upgrade and step.up_revision_id is not None:
        applied.append(step.up_revision_id)


context.configure(
    connection=config.attributes["connection"],
    target_metadata=metadata,
    version_table_schema=config.attributes["version_table_schema"],
    on_version_apply=_record,
)
with context.begin_transaction():
    context.run_migrations()
