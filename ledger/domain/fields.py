"""The rule of each input field of an event, once, for every boundary.

The SDK, the HTTP and CLI parameters and the topic's decoder all hand values to these
rules (the pydantic types below are what ``events.py`` declares its fields with), so a
value one boundary accepts is never refused by another: a task id the SDK records can
always be read back over HTTP. Each rule raises ``ValueError`` whose message names the
rule; pydantic (or the boundary) puts the field's name in front.
"""

from __future__ import annotations

import traceback as tracebacks
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BeforeValidator, Field, JsonValue

__all__ = [
    "MAX_MESSAGE_CHARS",
    "MAX_TRACEBACK_CHARS",
    "FreeText",
    "Identifier",
    "Name",
    "PeriodicName",
    "TaskId",
    "args_list",
    "describe_exception",
    "kwargs_dict",
    "no_nul",
    "without_nul",
]

MAX_MESSAGE_CHARS: Final = 4096
MAX_TRACEBACK_CHARS: Final = 32_768
"""Bounds on text taken from exceptions, so one event stays well under the size limit;
tracebacks keep their end, where the error is."""
_NUL: Final = "\x00"
_REPLACEMENT: Final = "\ufffd"


def no_nul(value: str) -> str:
    """Text the views store cannot hold a NUL character (PostgreSQL refuses it)."""
    if _NUL in value:
        raise ValueError("must not contain NUL characters")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


TaskId = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_not_blank), AfterValidator(no_nul)]
"""A task's id: 1 to 255 characters, not blank, no NUL: the same rule at every boundary."""
Identifier = TaskId
"""Any id-like text a query matches exactly (task names, worker names): the task id's rule."""
Name = TaskId
PeriodicName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_not_blank), AfterValidator(no_nul)]
FreeText = Annotated[str, AfterValidator(no_nul)]
"""Messages, tracebacks, reasons: any length the event's size allows, no NUL."""


def without_nul(text: str) -> str:
    """``text`` with each NUL replaced by U+FFFD: for text an emitter takes from elsewhere
    (an exception's message) and must record rather than refuse."""
    return text.replace(_NUL, _REPLACEMENT) if _NUL in text else text


def args_list(value: Any) -> list[Any] | None:
    """Positional arguments are a list or a tuple (JSON has lists only). A string, bytes, a
    mapping or a set are refused: iterating them would record their characters, keys or an
    arbitrary order instead of the arguments."""
    if value is None or isinstance(value, list):
        return value
    if isinstance(value, tuple):
        return list(value)
    raise ValueError(f"must be a list or tuple of positional arguments, got {type(value).__name__}")


def kwargs_dict(value: Any) -> dict[str, Any] | None:
    """Keyword arguments are a mapping of names to values."""
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, Mapping):
        return dict(value)
    raise ValueError(f"must be a mapping of argument names to values, got {type(value).__name__}")


Args = Annotated[list[JsonValue] | None, BeforeValidator(args_list)]
Kwargs = Annotated[dict[str, JsonValue] | None, BeforeValidator(kwargs_dict)]


def describe_exception(exc: Any, to_json: Callable[[str, Any], JsonValue]) -> dict[str, Any]:
    """``exc_type`` (module-qualified class name; bare for builtins), ``exc_message``,
    ``exc_args`` (the exception's args as JSON, through ``to_json(field, value)``) and
    ``traceback``, bounded in size and free of NUL. Only an exception instance describes a
    failure: anything else is refused (``"oops"`` or ``None`` would record a FAILURE whose
    type is ``str`` or ``NoneType``)."""
    if not isinstance(exc, BaseException):
        raise ValueError(f"must be an exception instance, got {type(exc).__name__}")
    cls = type(exc)
    qualified = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    return {
        "exc_type": qualified,
        "exc_message": without_nul(_safe_text(str, exc)[:MAX_MESSAGE_CHARS]),
        "exc_args": [to_json(f"exc.args[{index}]", arg) for index, arg in enumerate(exc.args)],
        "traceback": without_nul("".join(tracebacks.format_exception(exc))[-MAX_TRACEBACK_CHARS:]),
    }


def _safe_text(render: Callable[[object], str], value: object) -> str:
    try:
        return render(value)
    except Exception:  # a broken __str__ must not lose the event
        return object.__repr__(value)
