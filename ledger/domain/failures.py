"""Failure fingerprints: which failures share a root cause.

Two failures belong to one group when the task name, the exception type and the message
agree once the parts that vary per occurrence are masked: quoted values, timestamps, UUIDs,
memory addresses and other hex ids, and numbers. The masks run from the most specific to the
most general (a UUID is masked whole before its digits could be masked one run at a time),
so one message always masks the same way. One rule, one place: the projector stores the
fingerprint of every failure with this function, and every query groups by what it stored.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Final

__all__ = ["FINGERPRINT_LENGTH", "fingerprint", "is_fingerprint", "is_open", "mask_message"]

FINGERPRINT_LENGTH: Final = 16
"""Hex digits kept of the SHA-256: 64 bits, collisions negligible for any fleet's groups."""
MAX_MASKED: Final = 1000
"""Only the head of a very long message counts: the cause is stated first; the tail is
often a dump of the failing input."""

_MASKS: Final = (
    # 'a value' or "a value": quoted user input, file names, keys
    (re.compile(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\""), "'<str>'"),
    # ISO-8601 dates and times, with optional fraction and offset
    (re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"), "<time>"),
    (re.compile(r"\b[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\b"), "<uuid>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<addr>"),
    # hex ids (hashes, object ids, trace ids): 8+ hex digits with at least one digit. The
    # same placeholder as a number: a short hex id is now and then all decimal digits
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b"), "<n>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
)
_FINGERPRINT: Final = re.compile(rf"[0-9a-f]{{{FINGERPRINT_LENGTH}}}")


def mask_message(message: str | None) -> str:
    """``message`` with its per-occurrence parts replaced by placeholders (``<n>`` for numbers and hex
    ids, ``'<str>'``, ``<uuid>``, ``<addr>``, ``<time>``), whitespace collapsed, cut to ``MAX_MASKED``."""
    text = message or ""
    for pattern, placeholder in _MASKS:
        text = pattern.sub(placeholder, text)
    return text.strip()[:MAX_MASKED]


def fingerprint(task_name: str | None, exc_type: str, message: str | None) -> str:
    """The group key of a failure: a short hex hash of (task name, exception type, masked
    message). Stable across processes and versions of Python (no ``hash()``)."""
    key = "\x1f".join((task_name or "", exc_type, mask_message(message)))
    return hashlib.sha256(key.encode()).hexdigest()[:FINGERPRINT_LENGTH]


def is_fingerprint(text: str) -> bool:
    """Whether ``text`` could be a fingerprint (what a CLI or HTTP argument is checked against)."""
    return _FINGERPRINT.fullmatch(text) is not None


def is_open(last_failure_at: datetime, resolved_at: datetime | None, reopened_at: datetime | None = None) -> bool:
    """A group is open unless it was resolved at or after its latest failure and not
    reopened since: a failure that occurs after the resolution reopens it by itself, an
    operator's reopen after it does too (the resolution stays on record either way)."""
    if resolved_at is None:
        return True
    return last_failure_at > resolved_at or (reopened_at is not None and reopened_at > resolved_at)
