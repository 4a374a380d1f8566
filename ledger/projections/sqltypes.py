"""How each kind of value is stored, per database: one ``TypeDecorator`` per kind.

PostgreSQL gets its native types (timestamptz, jsonb, uuid). SQLite keeps what the embedded
views have always held, byte for byte: timestamps as fixed-width UTC ISO text (so text
order is time order, and a range or keyset comparison on text is one on time), JSON as
canonical text (sorted keys, no spaces), UUIDs as canonical lowercase text.

The value functions (``utc_text``, ``json_text``) are the one definition of those
encodings: the bulk write paths (COPY, executemany) call them too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import DateTime, Dialect, Text
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator, TypeEngine

from ledger.domain.statuses import TaskStatus

__all__ = ["JsonDocument", "JsonValue", "Status", "UtcTimestamp", "Uuid", "json_text", "utc_text"]

Processor = Callable[[Any], Any] | None


def utc_text(value: datetime) -> str:
    """A timestamp as fixed-width UTC ISO text: sorts as text the way it sorts as time."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def json_text(value: Any) -> str:
    """Canonical JSON text: the same value always gives the same bytes."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


_STATUS_BY_VALUE: dict[str, TaskStatus] = {status.value: status for status in TaskStatus}


def _on_sqlite(dialect: Dialect) -> bool:
    return dialect.name == "sqlite"


def _optional(function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else function(value)


class UtcTimestamp(TypeDecorator[datetime]):
    """timestamptz on PostgreSQL; fixed-width UTC ISO text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(Text() if _on_sqlite(dialect) else DateTime(timezone=True))

    def bind_processor(self, dialect: Dialect) -> Processor:
        return _optional(utc_text) if _on_sqlite(dialect) else None

    def result_processor(self, dialect: Dialect, coltype: object) -> Processor:
        return _optional(datetime.fromisoformat) if _on_sqlite(dialect) else None


class JsonValue(TypeDecorator[Any]):
    """A JSON value (SQL NULL for None): jsonb on PostgreSQL, canonical text on SQLite.
    Bound as canonical text on both, and read back from text (PostgreSQL connections hand
    jsonb over as its text, see ``postgres.connect``), so a JSON string is never taken for
    an already decoded value."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(Text() if _on_sqlite(dialect) else postgresql.JSONB())

    def bind_processor(self, dialect: Dialect) -> Processor:
        return _optional(json_text)

    def result_processor(self, dialect: Dialect, coltype: object) -> Processor:
        return _optional(json.loads)


class JsonDocument(TypeDecorator[str]):
    """A JSON document kept as text (an event's payload): jsonb on PostgreSQL, the text as
    written on SQLite; bound and read back as text, never parsed here."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(Text() if _on_sqlite(dialect) else postgresql.JSONB())

    def bind_processor(self, dialect: Dialect) -> Processor:
        return _optional(lambda value: value.decode() if isinstance(value, bytes) else value)

    def result_processor(self, dialect: Dialect, coltype: object) -> Processor:
        return None


class Uuid(TypeDecorator[UUID]):
    """uuid on PostgreSQL; canonical lowercase text on SQLite (which orders as UUIDs do)."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(Text() if _on_sqlite(dialect) else postgresql.UUID(as_uuid=True))

    def bind_processor(self, dialect: Dialect) -> Processor:
        return _optional(str)

    def result_processor(self, dialect: Dialect, coltype: object) -> Processor:
        return _optional(lambda value: value if isinstance(value, UUID) else UUID(value))


class Status(TypeDecorator[TaskStatus]):
    """A task status, stored as its name."""

    impl = Text
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Processor:
        return _optional(str)

    def result_processor(self, dialect: Dialect, coltype: object) -> Processor:
        return _optional(_STATUS_BY_VALUE.__getitem__)  # TaskStatus(value) costs ~3 µs a row (Enum.__new__)
