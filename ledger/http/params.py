"""Typed request parameters: every rule the HTTP boundary enforces, as pydantic types, so a
bad value comes back as FastAPI's 422 with the parameter's location (``["query", "status",
0]``) and the rule, never as a 500 from deep inside a backend.

The rules are the domain's (``parse_status``) and the query API's (``decode_cursor``); this
module only adapts them to the boundary and adds what the databases need: no NUL
characters (PostgreSQL text cannot hold one) and instants that stay in range in UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, WithJsonSchema

from ledger.domain.fields import Identifier, no_nul
from ledger.domain.statuses import STATUS_ALIASES, TaskStatus, parse_status
from ledger.projections.queries import decode_cursor

__all__ = ["Cursor", "Instant", "Status", "Text", "invalid", "parse_positions"]

_STATUS_HELP: Final = (
    "a task status, any case: "
    + ", ".join(TaskStatus)
    + "; aliases: "
    + ", ".join(f"{alias} (= {target})" for alias, target in STATUS_ALIASES.items())
)
_POSITIONS: Final = re.compile(r"^\d{1,4}:\d{1,19}(,\d{1,4}:\d{1,19})*$")


def invalid(location: tuple[str, ...], message: str, given: Any) -> RequestValidationError:
    """A 422 shaped like FastAPI's own, for rules that need more than one parameter."""
    return RequestValidationError([{"type": "value_error", "loc": location, "msg": message, "input": given}])


def _status(value: object) -> TaskStatus:
    if isinstance(value, TaskStatus):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a status name, got {type(value).__name__}")
    return parse_status(value)


def _in_utc(value: datetime) -> datetime:
    """UTC, so both stores compare like with like; an offset that pushes a year-1 or
    year-9999 instant past the calendar is refused here rather than crashing a store."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range once converted to UTC") from None


def _cursor(value: str) -> str:
    cursor = decode_cursor(no_nul(value))
    _in_utc(cursor.at)
    no_nul(cursor.task_id)
    return value


Text = Identifier
"""Ids and names matched against the views: the domain's rule for them (``fields.Identifier``:
1 to 255 characters, not blank, no NUL), so what the SDK records can always be asked for."""

Status = Annotated[
    TaskStatus, BeforeValidator(_status), WithJsonSchema({"type": "string", "description": _STATUS_HELP})
]
"""A status as a user types it: case-insensitive, SUCCESS accepted for DONE."""

Instant = Annotated[AwareDatetime, AfterValidator(_in_utc)]
"""An ISO 8601 time with its offset (naive times are refused: they would silently shift by
the server's zone)."""

Cursor = Annotated[str, AfterValidator(_cursor)]
"""An opaque ``next_cursor`` from a previous page."""


def parse_positions(value: str, partitions: int) -> dict[int, int]:
    """``"0:12,1:7"`` → ``{0: 12, 1: 7}``: one next offset per partition (the SSE id). Raises
    ValueError naming the rule broken."""
    if not _POSITIONS.match(value):
        raise ValueError("expected partition:offset pairs separated by commas, e.g. 0:12,1:7")
    positions: dict[int, int] = {}
    for pair in value.split(","):
        partition, offset = (int(part) for part in pair.split(":"))
        if partition >= partitions:
            raise ValueError(f"partition {partition} does not exist (the topic has {partitions})")
        if partition in positions:
            raise ValueError(f"partition {partition} appears twice")
        positions[partition] = offset
    return positions
