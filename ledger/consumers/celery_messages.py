"""What a message on Celery's event exchange holds: one event dict, or a list of them
(``<group>.multi``: a worker whose event loop buffers its task events publishes them
together), as JSON (Celery's ``event_serializer``). Anything else is not a Celery event,
and says why: the ingester dead-letters it with that reason."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["Item", "NotCeleryEvent", "celery_events", "checked"]

JSON_TYPES: Final = frozenset({"application/json", ""})
_KINDS: Final = {str: "string", int: "number", float: "number", bool: "boolean", list: "array", type(None): "null"}


class NotCeleryEvent(ValueError):
    """A message, or one item of it, that is no Celery event; the text says why."""


@dataclass(frozen=True, slots=True)
class Item:
    """One item of a batch: the ``index``-th of ``count`` in message number ``message``."""

    message: int
    index: int
    count: int
    value: Any

    def label(self, reason: str) -> str:
        return f"event {self.index} of {self.count}: {reason}" if self.count > 1 else reason


def celery_events(body: bytes, content_type: str | None) -> list[Any]:
    """The items of one message body; ``NotCeleryEvent`` when it is not JSON at all."""
    kind = (content_type or "").lower()
    if kind not in JSON_TYPES:
        raise NotCeleryEvent(f"content type {kind!r}: Celery's events are JSON (event_serializer='json')")
    try:
        value = json.loads(body)
    except ValueError as exc:  # UnicodeDecodeError included
        raise NotCeleryEvent(f"not JSON: {exc}") from None
    items = value if isinstance(value, list) else [value]
    if not items:
        raise NotCeleryEvent("not a Celery event: an empty list")
    return items


def checked(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a Celery event: a JSON object with a non-empty string ``type``."""
    if not isinstance(value, dict):
        json_kind = _KINDS.get(type(value), type(value).__name__)
        raise NotCeleryEvent(f"not a Celery event: a JSON {json_kind}, not an object with a 'type'")
    kind = value.get("type")
    if not isinstance(kind, str) or not kind:
        raise NotCeleryEvent(f"not a Celery event: 'type' must be a non-empty string, got {kind!r}")
    return value
