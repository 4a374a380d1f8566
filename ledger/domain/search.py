"""The search rules, one place for every backend and entry point.

Free text: a task's *search document* is its id, name, args, kwargs, result, exception type
and message, each on its own line (JSON values as compact JSON with sorted keys, non-ASCII
kept as is), case-folded. A query is split on whitespace into terms; a task matches when
EVERY term occurs in its document as a substring (after the same case folding). A term
never spans two fields (a line break separates them, and a term holds no whitespace). A
term needs at least ``MIN_TERM`` characters: the indexes of both backends (PostgreSQL
trigrams, SQLite FTS5 trigrams) work on three-character pieces, so a shorter term could
only be answered by reading every row. Nothing is left out for being big: what the view
holds (an event is at most 960 KiB, see ``limits``) is in the document.

Structured: a kwarg filter (``user_id=42``) matches a task whose kwargs hold that key with
an equal JSON scalar (42 matches 42 and 42.0, not "42"); runtime bounds are strict; a task
has *retried* once its status is RETRY or its attempt is past the first.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

__all__ = ["MIN_TERM", "Scalar", "check_kwarg", "check_runtimes", "kwarg_value", "search_document", "search_terms"]

MIN_TERM: Final = 3
MAX_TERMS: Final = 10
MAX_QUERY: Final = 1000
"""Characters of a whole query: a search is typed, not a document."""
_KEY: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
_INT64: Final = 2**63

Scalar = str | int | float | bool | None
"""What a kwarg filter compares with: a JSON scalar."""


_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))
"""Made once: ``json.dumps`` with options builds an encoder per call (a third of the cost)."""


def _json(value: Any) -> str:
    return "" if value is None else _ENCODER.encode(value)


def search_document(task_id: str, name: str | None, args: Any, kwargs: Any, result: Any, exc_type: str | None,
                    exc_message: str | None) -> str:  # fmt: skip
    """The text a task's free-text search looks in (stored with the row, indexed)."""
    parts = (task_id, name or "", _json(args), _json(kwargs), _json(result), exc_type or "", exc_message or "")
    return "\n".join(parts).casefold()


def search_terms(text: str, field: str) -> tuple[str, ...]:
    """The case-folded terms of a query, each once; ValueError naming ``field`` and the rule."""
    if "\x00" in text:
        raise ValueError(f"{field}: must not contain NUL characters")
    if len(text) > MAX_QUERY:
        raise ValueError(f"{field}: at most {MAX_QUERY} characters, got {len(text)}")
    terms = tuple(dict.fromkeys(text.casefold().split()))
    if not terms:
        raise ValueError(f"{field}: needs at least one term (words separated by spaces)")
    if len(terms) > MAX_TERMS:
        raise ValueError(f"{field}: at most {MAX_TERMS} terms, got {len(terms)}")
    for term in terms:
        if len(term) < MIN_TERM:
            raise ValueError(f"{field}: each term needs at least {MIN_TERM} characters, got {term!r}")
    return terms


def kwarg_value(raw: str, field: str) -> Scalar:
    """A value as typed after ``key=``: a JSON scalar when it reads as one (``42``, ``4.5``,
    ``true``, ``null``, ``"42"``), else the text itself as a string."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return _scalar(value, field)


def check_kwarg(key: object, value: object, field: str) -> tuple[str, Scalar]:
    """A (key, value) pair a kwarg filter can match; ValueError naming ``field`` otherwise."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(f"{field}: the key must be a Python identifier (letters, digits, _), got {key!r}")
    return key, _scalar(value, field)


def _scalar(value: object, field: str) -> Scalar:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{field}: the value must be a finite number, got {value!r}")
    if isinstance(value, int) and not isinstance(value, bool) and not -_INT64 <= value < _INT64:
        raise ValueError(f"{field}: an integer must fit in 64 bits, got {value}")
    if isinstance(value, str) and "\x00" in value:
        raise ValueError(f"{field}: must not contain NUL characters")
    if value is not None and not isinstance(value, str | int | float | bool):
        raise ValueError(
            f"{field}: only a scalar can be matched (a number, string, true, false or null), "
            f"got {json.dumps(value)[:40]}"
        )
    return value


def check_runtimes(above: float | None, below: float | None, fields: tuple[str, str]) -> None:
    """Runtime bounds in seconds: finite, not negative, and a range that can hold a runtime."""
    for value, field in zip((above, below), fields, strict=True):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{field}: must be a number of seconds, 0 or more, got {value}")
    if above is not None and below is not None and below <= above:
        raise ValueError(f"{fields[1]}: must be greater than {fields[0]} ({above}), got {below}")
