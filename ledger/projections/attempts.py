"""Each attempt of a task as spans of time, for the time bars of the task page: how long it
waited in the queue, how long the worker took to start it, how long it ran.

Pure: from a timeline's entries (``build_timeline``). Each span takes the EARLIEST event of
its status in its attempt (a late duplicate changes nothing), the same rule as the task's
dates. An attempt without a PENDING of its own (Celery's retries send none) was queued
when the previous attempt ended in RETRY. A span is None where an end is unknown (an
attempt still running has no runtime yet).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ledger.domain.statuses import TaskStatus
from ledger.domain.timing import seconds_between
from ledger.projections.timeline import TERMINAL_STATUSES, TimelineEntry

__all__ = ["AttemptSpans", "attempt_spans"]


@dataclass(frozen=True, slots=True)
class AttemptSpans:
    attempt: int
    queued: datetime | None
    received: datetime | None
    started: datetime | None
    ended: datetime | None
    outcome: TaskStatus | None
    """The status that ended the attempt (RETRY, FAILURE, DONE, REVOKED); None: not ended."""

    @property
    def queue_wait(self) -> float | None:
        """Seconds from queued to received (or to started, with no RECEIVED)."""
        return seconds_between(self.queued, self.received or self.started)

    @property
    def start_delay(self) -> float | None:
        return seconds_between(self.received, self.started)

    @property
    def runtime(self) -> float | None:
        return seconds_between(self.started, self.ended)

    @property
    def total(self) -> float:
        return sum(s or 0.0 for s in (self.queue_wait, self.start_delay, self.runtime))


def attempt_spans(entries: Sequence[TimelineEntry]) -> list[AttemptSpans]:
    """The spans of each attempt present in ``entries``, in attempt order."""
    firsts: dict[int, dict[TaskStatus, datetime]] = {}
    for entry in entries:
        if entry.status is not None:
            seen = firsts.setdefault(entry.attempt, {})
            if entry.status not in seen or entry.occurred_at < seen[entry.status]:
                seen[entry.status] = entry.occurred_at
    spans: list[AttemptSpans] = []
    for attempt in sorted(firsts):
        seen = firsts[attempt]
        ends = sorted((at, status) for status, at in seen.items() if status in TERMINAL_STATUSES)
        before = spans[-1] if spans and spans[-1].attempt == attempt - 1 else None
        retried_at = before.ended if before is not None and before.outcome == TaskStatus.RETRY else None
        spans.append(AttemptSpans(
            attempt=attempt,
            queued=seen.get(TaskStatus.PENDING, retried_at),
            received=seen.get(TaskStatus.RECEIVED),
            started=seen.get(TaskStatus.STARTED),
            ended=ends[0][0] if ends else None,
            outcome=ends[0][1] if ends else None,
        ))  # fmt: skip
    return spans
