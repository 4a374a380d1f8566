"""What an emitter records of a task's data: arguments, keyword arguments, results and an
exception's args, as JSON — the way Celery's json serializer sends them (tuples become
lists).

The shape of each field is the domain's rule (``domain.fields``: args are a list or a
tuple, kwargs a mapping, an exception an exception); what is inside may be anything the
user's code passed. Values that are not JSON (a ``Decimal``, a model instance) are
recorded as their ``repr()`` and logged at WARNING with the field's name, and a NUL
character, which the views cannot store, becomes U+FFFD; ``strict=True`` raises
``NotSerializable`` instead of either, for development and tests.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Final

from pydantic import JsonValue

from ledger.domain.fields import args_list, describe_exception, kwargs_dict

__all__ = ["MAX_REPR_CHARS", "InvalidEvent", "JsonPolicy", "NotSerializable"]

log = logging.getLogger("ledger.sdk")
MAX_REPR_CHARS: Final = 4096
_NUL_ESCAPE: Final = "\\u0000"


class InvalidEvent(ValueError):
    """Input that makes no valid event; the message names the field and the rule."""


class NotSerializable(InvalidEvent):
    """``strict=True``: an args/kwargs/result value is not JSON."""


class JsonPolicy:
    """Turns a task's data into JSON values, by the rules of this module's docstring."""

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict

    def args(self, value: Any) -> list[JsonValue] | None:
        items = _shaped("args", args_list, value)
        return None if items is None else [self.value(f"args[{index}]", item) for index, item in enumerate(items)]

    def kwargs(self, value: Any) -> dict[str, JsonValue] | None:
        named = _shaped("kwargs", kwargs_dict, value)
        if named is None:
            return None
        return {self._key(key): self.value(f"kwargs[{key!r}]", item) for key, item in named.items()}

    def exception(self, value: Any) -> dict[str, Any]:
        """The failure fields of exception ``value`` (``domain.fields.describe_exception``)."""
        described: dict[str, Any] = _shaped("exc", lambda exc: describe_exception(exc, self.value), value)
        return described

    def value(self, field: str, value: Any) -> JsonValue:
        """``value`` as JSON data, or the documented fallback when it is not JSON."""
        kind = type(value)
        if kind is int or kind is bool or value is None or (kind is str and "\x00" not in value):
            return value  # type: ignore[no-any-return]  # JSON as it is: the common case, no round trip
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            return self._fallback(field, value, str(exc))
        if _NUL_ESCAPE in text:
            if self.strict:
                raise NotSerializable(f"{field}: contains a NUL character, which the views cannot store")
            log.warning("ledger: %s contains a NUL character; recording it as U+FFFD", field)
            text = text.replace(_NUL_ESCAPE, "\\ufffd")
        data: JsonValue = json.loads(text)
        return data

    def _key(self, key: object) -> str:
        return key if isinstance(key, str) else self._fallback("kwargs key", key, "not a str")

    def _fallback(self, field: str, value: object, why: str) -> str:
        if self.strict:
            raise NotSerializable(f"{field}: {type(value).__name__} is not JSON ({why})")
        log.warning("ledger: %s is not JSON (%s); recording its repr()", field, why)
        text = _safe_repr(value)[:MAX_REPR_CHARS]
        return text.replace("\x00", "\ufffd")


def _shaped(field: str, rule: Callable[[Any], Any], value: Any) -> Any:
    try:
        return rule(value)
    except InvalidEvent:
        raise
    except ValueError as exc:
        raise InvalidEvent(f"{field}: {exc}") from None


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:  # a broken __repr__ must not lose the event
        return object.__repr__(value)
