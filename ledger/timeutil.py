"""Instants given by callers (CLI, HTTP, Python) for time-travel and replay windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

__all__ = ["ceil_ms", "require_aware"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def require_aware(value: datetime, name: str) -> datetime:
    """``value`` if it is timezone-aware; ValueError naming ``name`` if not. Stored times
    are UTC, and a naive time would be silently read in the machine's local zone."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}: must be timezone-aware (e.g. 2026-03-01T02:13:00+00:00), got {value!r}")
    return value


def ceil_ms(value: datetime) -> int:
    """Milliseconds since the epoch, rounded UP, in integers (no float error): a record
    stamped at whole millisecond ``m`` is at or after ``value`` exactly when ``m >= ceil_ms``."""
    micros = (require_aware(value, "time") - _EPOCH) // timedelta(microseconds=1)
    return -(-micros // 1000)
