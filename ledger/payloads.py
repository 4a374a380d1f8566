"""What an emitter records of a task's data: arguments, keyword arguments, results and an
exception's args, as JSON — the way Celery's json serializer sends them (tuples become
lists).

The shape of each field is the domain's rule (``domain.fields``: args are a list or a
tuple, kwargs a mapping, an exception an exception); what is inside may be anything the
user's code passed. Values that are not JSON (a ``Decimal``, a model instance) are
recorded as their ``repr()`` and logged at WARNING with the field's name, and a NUL
character or a surrogate, which the views cannot store, becomes U+FFFD; ``strict=True`` raises
``NotSerializable`` instead of either, for development and tests.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from enum import Enum
from typing import Any, Final

from pydantic import JsonValue

from ledger.domain.fields import args_list, describe_exception, kwargs_dict

__all__ = ["MAX_REPR_CHARS", "NOT_PLAIN", "InvalidEvent", "JsonPolicy", "NotSerializable"]

log = logging.getLogger("ledger.sdk")
MAX_REPR_CHARS: Final = 4096
_NUL_ESCAPE: Final = "\\u0000"


class _Verdict(Enum):
    NOT_PLAIN = "not plain"


NOT_PLAIN: Final = _Verdict.NOT_PLAIN
"""``JsonPolicy.plain``'s answer for a value that needs the round trip's rules."""
_PLAIN_DEPTH: Final = 100  # deeper (or circular) values take the round trip, which decides
_PLAIN_INT: Final = 1 << 64  # bigger ints too: their digits have a conversion limit
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_REAL_NUL: Final = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
"""A NUL as ``json.dumps`` writes it: ``\\u0000`` after an even number of backslashes (an odd
number escapes the backslash of text that only spells it)."""


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
        plain = self.plain(value)
        return self._round_trip(field, value) if plain is NOT_PLAIN else plain

    @staticmethod
    def plain(value: Any) -> JsonValue | _Verdict:
        """``value(field, value)`` without its round trip through ``json``, for a value
        made only of JSON's own types (tuples read as lists), finite floats and text
        without NUL: a copy, equal to what the round trip gives; ``NOT_PLAIN`` for any
        other value (``value`` then takes the round trip, whose fallbacks decide)."""
        kind = type(value)
        if kind is int or kind is bool or value is None or (kind is str and "\x00" not in value and value.isascii()):
            return value  # type: ignore[no-any-return]  # JSON as it is: the common case
        try:
            return _plain(value, _PLAIN_DEPTH)
        except _NotPlain:
            return NOT_PLAIN

    def _round_trip(self, field: str, value: Any) -> JsonValue:
        """``value`` through ``json.dumps`` and back: the rules for any value. Text that
        cannot be stored (a NUL; a surrogate, which is no character and has no UTF-8) becomes
        U+FFFD; text that only spells one (a backslash, then ``u0000``) is kept as it is."""
        try:
            text = json.dumps(value, allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            return self._fallback(field, value, str(exc))
        text = self._storable(field, text, _REAL_NUL, "\\1\\\\ufffd", "a NUL character")
        text = self._storable(field, text, _SURROGATE, "\ufffd", "a surrogate (no Unicode character)")
        data: JsonValue = json.loads(text)
        return data

    def _storable(self, field: str, text: str, what: re.Pattern[str], replacement: str, name: str) -> str:
        if what.search(text) is None:
            return text
        if self.strict:
            raise NotSerializable(f"{field}: contains {name}, which the views cannot store")
        log.warning("ledger: %s contains %s; recording it as U+FFFD", field, name)
        return what.sub(replacement, text)

    def _key(self, key: object) -> str:
        return key if isinstance(key, str) else self._fallback("kwargs key", key, "not a str")

    def _fallback(self, field: str, value: object, why: str) -> str:
        if self.strict:
            raise NotSerializable(f"{field}: {type(value).__name__} is not JSON ({why})")
        log.warning("ledger: %s is not JSON (%s); recording its repr()", field, why)
        text = _safe_repr(value)[:MAX_REPR_CHARS]
        return text.replace("\x00", "\ufffd")


class _NotPlain(Exception):
    """``_plain`` met a value it leaves to the round trip."""


def _plain(value: Any, depth: int) -> JsonValue:
    """A copy of ``value`` as the round trip would give it, or ``_NotPlain``. Only exact
    types: a subclass (an ``IntEnum``, a named tuple, an ``OrderedDict``) is left to the
    round trip, and so is text the round trip would change (NUL, the text ``\\u0000``,
    surrogates), an int too big for its digits and a dict key that is not text."""
    kind = type(value)
    if kind is str:
        if "\x00" in value or _NUL_ESCAPE in value or (not value.isascii() and _SURROGATE.search(value)):
            raise _NotPlain
        return value  # type: ignore[no-any-return]
    if kind is int:
        if -_PLAIN_INT < value < _PLAIN_INT:
            return value  # type: ignore[no-any-return]
        raise _NotPlain
    if kind is bool or value is None:
        return value  # type: ignore[no-any-return]
    if kind is float:
        if value - value == 0.0:  # finite: NaN and infinities are not JSON
            return value  # type: ignore[no-any-return]
        raise _NotPlain
    if depth:
        if kind is list or kind is tuple:
            return [_plain(item, depth - 1) for item in value]
        if kind is dict:
            return {_plain_key(key): _plain(item, depth - 1) for key, item in value.items()}
    raise _NotPlain


def _plain_key(key: Any) -> str:
    if type(key) is not str:  # the round trip would turn 1, None, True into text
        raise _NotPlain
    return _plain(key, 0)  # type: ignore[return-value]


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
