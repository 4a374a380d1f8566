"""Structured, quiet-by-default logging: one line per record, fields as key=value (or JSON).

Modules log with ``extra={...}``; this formatter prints those fields after the message so
log lines stay greppable and machine-readable.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        parts = [when, record.levelname.lower(), record.name, repr(record.getMessage())]
        parts += [f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in _fields(record).items()]
        if record.exc_info:
            parts.append("exc=" + repr(self.formatException(record.exc_info)))
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure(level: str = "WARNING", fmt: str = "text") -> None:
    """Send the ``ledger`` loggers to stderr at ``level`` (idempotent)."""
    root = logging.getLogger("ledger")
    root.setLevel(level)
    handler = next((h for h in root.handlers if getattr(h, "_ledger", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._ledger = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.propagate = False
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
