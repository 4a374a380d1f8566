"""The size rule: an event too big for the log is cut, never dropped.

A task called with 5 MB of arguments still happened: its PENDING, RECEIVED and outcome
must be in the ledger. ``fit`` keeps every field that decides the task's state (ids,
status, attempt, times, exception type) and cuts the bulky ones, largest first: JSON
values (args, kwargs, result, the exception's args) become null, text keeps what
matters most (a traceback its end, a message its start). Each cut field is named in the
event's ``truncated`` with its original size, so a reader knows what it is not seeing.
"""

from __future__ import annotations

from typing import Any, Final, TypeVar

from pydantic import TypeAdapter

from ledger.domain.events import LedgerEvent, TaskEvent

__all__ = ["CUTTABLE", "fit", "json_size"]

E = TypeVar("E", bound=LedgerEvent)

CUTTABLE: Final = ("args", "kwargs", "result", "exc_args", "traceback", "exc_message", "reason")
"""Fields that describe a task without deciding its state, the only ones ``fit`` cuts."""
_KEEP_END: Final = frozenset({"traceback"})
_MARGIN: Final = 256
"""Bytes kept free for the ``truncated`` entries themselves."""
_ANY: Final = TypeAdapter[Any](Any)


def json_size(event: LedgerEvent) -> int:
    """Bytes of the event's JSON (the record value before any codec)."""
    return len(type(event).__pydantic_serializer__.to_json(event))


def fit(event: E, limit: int) -> E:
    """``event`` if its JSON fits in ``limit`` bytes, else a copy with the largest cuttable
    fields cut until it does (same event id: it is the same event, described smaller).
    ``ValueError`` if even the uncuttable fields exceed the limit."""
    size = json_size(event)
    if size <= limit or not isinstance(event, TaskEvent):
        if size > limit:
            raise ValueError(f"event {event.event_id}: {size} bytes > {limit} and nothing in it can be cut")
        return event
    values = event.__dict__
    sizes = {name: _value_size(values[name]) for name in CUTTABLE if values.get(name) not in (None, "", [], {})}
    truncated = dict(event.truncated or {})
    update: dict[str, Any] = {}
    for name in sorted(sizes, key=lambda n: sizes[n], reverse=True):
        excess = size - limit + _MARGIN
        update[name] = _cut(values[name], sizes[name] - excess, keep_end=name in _KEEP_END)
        truncated[name] = truncated.get(name, sizes[name])
        candidate = event.model_copy(update={**update, "truncated": truncated})
        size = json_size(candidate)
        if size <= limit:
            return candidate
    raise ValueError(f"task {event.task_id!r}: {size} bytes > {limit} even with {', '.join(sizes)} cut")


def _value_size(value: Any) -> int:
    return len(_ANY.dump_json(value))


def _cut(value: Any, budget: int, *, keep_end: bool) -> Any:
    """A string shortened to about ``budget`` bytes (characters can be up to 4 bytes: the
    budget is divided by 4 when the text is not ASCII); any other value becomes None."""
    if not isinstance(value, str) or budget <= 0:
        return None
    chars = budget if value.isascii() else budget // 4
    return value[-chars:] if keep_end else value[:chars]
