"""Celery's ``repr()`` text of args, kwargs and results (its events carry ``saferepr``
output, not the values) read back into JSON values.

The rule is ``ast.literal_eval`` then ``JsonPolicy.value``: a literal becomes its JSON value
(tuples as lists, the policy's fallbacks for what is not JSON), any other text stays text.
Two shortcuts give the same answers for less, as this runs for most events an ingester
reads: each distinct text read into plain JSON is remembered (bounded: a ``task-sent`` and
its ``task-received`` carry one text, and kwargs texts repeat), and ``read_plain`` reads
the texts ``saferepr`` writes for plain data (numbers, quoted text without escapes,
``True`` / ``False`` / ``None``, tuples, lists, dicts keyed by text) without compiling them,
leaving anything else to ``literal_eval``.
"""

from __future__ import annotations

import ast
import re
from collections import OrderedDict
from typing import Any, Final

from pydantic import JsonValue

from ledger.payloads import NOT_PLAIN, JsonPolicy

__all__ = ["ReprReader", "read_plain"]

_REMEMBERED: Final = 4096
_REMEMBERED_CHARS: Final = 2048
_DEPTH: Final = 100  # JsonPolicy.plain's: deeper values are left to the rule
_INT: Final = 1 << 64  # JsonPolicy.plain's: bigger ints are left to the rule
_SURROGATE: Final = re.compile("[\ud800-\udfff]")  # not Python source: literal_eval refuses them
_TOKEN: Final = re.compile(
    r""" *(?:('[^'\\\x00-\x1f\x7f]*'|"[^"\\\x00-\x1f\x7f]*")"""  # 1: text with no escape
    r"""|(-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?)(?![\w.])"""  # 2: number, 3-4: a float's
    r"""|(True|False|None)(?!\w)|([][(){},:])|([^ ]))""",  # 5: constant, 6: punctuation, 7: other
    re.DOTALL,
)
_CONSTANTS: Final = {"True": True, "False": False, "None": None}
_CLOSERS: Final = {"(": ")", "[": "]"}


class ReprReader:
    """Reads repr texts by the rule of this module's docstring; one per stream (it
    remembers)."""

    def __init__(self, payloads: JsonPolicy) -> None:
        self._payloads = payloads
        self._known: OrderedDict[str, JsonValue] = OrderedDict()  # text -> its plain value

    def read(self, field: str, text: Any) -> Any:
        """The JSON value of repr ``text`` (a value that is no text: as ``JsonPolicy``
        gives it), or the text when it is no literal. A remembered value is handed to an
        event, which copies it (pydantic), so it is never shared with one."""
        if not isinstance(text, str):
            return self._payloads.value(field, text)
        known = self._known.get(text, NOT_PLAIN)
        if known is not NOT_PLAIN:
            self._known.move_to_end(text)
            return known
        value = read_plain(text)
        if value is NOT_PLAIN:
            try:
                parsed = ast.literal_eval(text)
                value = self._payloads.plain(parsed)
                if value is NOT_PLAIN:  # the policy's fallbacks, warnings included, every time
                    return self._payloads.value(field, parsed)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                return text
        if len(text) <= _REMEMBERED_CHARS:
            self._known[text] = value
            if len(self._known) > _REMEMBERED:
                self._known.popitem(last=False)
        return value


def read_plain(text: str) -> Any:
    """``JsonPolicy.plain(ast.literal_eval(text))`` for the texts of plain data, read
    without compiling them; ``NOT_PLAIN`` for any other text (and for what either would
    refuse), which ``literal_eval`` then decides."""
    if not text.isascii() and _SURROGATE.search(text):
        return NOT_PLAIN
    tokens = _TOKEN.findall(text)
    try:
        value, end = _value(tokens, 0, _DEPTH)
    except (_Unread, IndexError, ValueError):  # ValueError: an int beyond str -> int's limit
        return NOT_PLAIN
    return value if end == len(tokens) else NOT_PLAIN


class _Unread(Exception):
    """A token ``read_plain`` leaves to ``literal_eval``."""


def _value(tokens: list[tuple[str, ...]], at: int, depth: int) -> tuple[Any, int]:
    """The value starting at token ``at``, and the index of the token after it."""
    quoted, number, fraction, exponent, constant, mark, _other = tokens[at]
    if quoted:
        return quoted[1:-1], at + 1
    if number:
        if fraction or exponent:
            real = float(number)
            if real - real != 0.0:  # out of range: inf, not JSON
                raise _Unread
            return real, at + 1
        whole = int(number)
        if not -_INT < whole < _INT:
            raise _Unread
        return whole, at + 1
    if constant:
        return _CONSTANTS[constant], at + 1
    if not depth:
        raise _Unread
    if mark in _CLOSERS:
        return _sequence(tokens, at + 1, _CLOSERS[mark], depth - 1, mark == "(")
    if mark == "{":
        return _mapping(tokens, at + 1, depth - 1)
    raise _Unread


def _sequence(tokens: list[tuple[str, ...]], at: int, closer: str, depth: int, parens: bool) -> tuple[Any, int]:
    """A list, or a tuple (read as a list); in parentheses one item and no comma is that
    item, as Python reads ``(x)``."""
    items: list[Any] = []
    comma = False
    while tokens[at][5] != closer:
        item, at = _value(tokens, at, depth)
        items.append(item)
        mark = tokens[at][5]
        if mark == ",":
            comma, at = True, at + 1
        elif mark != closer:
            raise _Unread
    if parens and len(items) == 1 and not comma:
        return items[0], at + 1
    return items, at + 1


def _mapping(tokens: list[tuple[str, ...]], at: int, depth: int) -> tuple[dict[str, Any], int]:
    """A dict keyed by text (any other key, or a set, is left to ``literal_eval``)."""
    named: dict[str, Any] = {}
    while tokens[at][5] != "}":
        key = tokens[at][0]
        if not key or tokens[at + 1][5] != ":":
            raise _Unread
        named[key[1:-1]], at = _value(tokens, at + 2, depth)
        mark = tokens[at][5]
        if mark == ",":
            at += 1
        elif mark != "}":
            raise _Unread
    return named, at + 1
