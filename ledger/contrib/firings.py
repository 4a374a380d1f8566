"""Duplicate firings of a periodic task: more than one run dispatched in one schedule slot.

Celery-free and pure, so the query layer can use it next to ``missed_runs`` (both read the
runs that ``ViewStore.periodic_runs`` returns).
"""

from __future__ import annotations

from collections.abc import Iterable

from ledger.projections.store import RunOutcome

__all__ = ["SLOT_FRACTION", "duplicate_firings"]

SLOT_FRACTION = 0.5
"""How much of an interval a slot spans, from the run that opened it."""


def duplicate_firings(runs: Iterable[RunOutcome], interval: float | None) -> int:
    """Runs triggered less than half an interval after the run that opened the current
    slot. A scheduler's regular runs come one interval apart, give or take its tick, so
    what lands in between is a second scheduler (two beat processes, an overlapping
    deploy) or a manual re-dispatch. Half an interval, not a whole one, so the jitter of
    a single scheduler is never flagged. Unknown interval (never registered): 0."""
    if not interval or interval <= 0:
        return 0
    window = interval * SLOT_FRACTION
    duplicates = 0
    opened = None
    for when in sorted(run.triggered_at for run in runs):
        if opened is not None and (when - opened).total_seconds() < window:
            duplicates += 1
        else:
            opened = when
    return duplicates
