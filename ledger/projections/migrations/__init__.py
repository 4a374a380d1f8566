"""Versioned schema migrations: plain SQL files ``NNNN_name.sql`` applied in order.

Each store records applied versions in ``schema_migrations`` and skips them, so applying
twice is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load(dialect: str) -> list[Migration]:
    """The migrations of ``dialect`` ("postgres" or "sqlite"), in version order."""
    folder = resources.files(__package__).joinpath(dialect)
    migrations = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version, _, rest = entry.name.partition("_")
            migrations.append(Migration(int(version), rest.removesuffix(".sql"), entry.read_text()))
    return sorted(migrations, key=lambda m: m.version)
