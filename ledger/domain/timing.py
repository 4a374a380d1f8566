"""The durations the fold derives from a task's dates: what operators chart (queue wait,
time to start, total time). One rule, used by the fold and by the migration that filled
the rows stored before the durations existed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Final

from ledger.domain.statuses import READY_STATES, TaskStatus

__all__ = ["DURATIONS", "durations", "seconds_between"]

DURATIONS: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        "queue_wait": ("date_pending", "date_received"),
        "start_delay": ("date_received", "date_started"),
        "total_time": ("date_pending", "date_done"),
    }
)
"""Derived field → (from, to) date fields: seconds between them, never negative (the
publisher's and the worker's clocks may disagree a little). A function of the other fields
only, so as order-proof as they are; ``total_time`` only once the task is finished."""


def durations(dates: Mapping[str, datetime | None], status: TaskStatus | str) -> dict[str, float | None]:
    """``DURATIONS`` of a row given its date fields and status: for a migration filling
    rows stored before the durations existed (as a rebuild would)."""
    derived = {name: seconds_between(dates[since], dates[until]) for name, (since, until) in DURATIONS.items()}
    if status not in READY_STATES:
        derived["total_time"] = None
    return derived


def seconds_between(since: datetime | None, until: datetime | None) -> float | None:
    """Seconds from ``since`` to ``until``, never negative; None if either is unknown."""
    return None if since is None or until is None else max(0.0, (until - since).total_seconds())
