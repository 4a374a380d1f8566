"""Time per attempt (pure): queue wait, start delay and runtime from a timeline; a retry's
next attempt queued when the RETRY ended the previous one; a running attempt has no
runtime; a late duplicate changes nothing."""

from __future__ import annotations

from ledger.domain.events import TaskReceived, TaskStarted
from ledger.domain.statuses import TaskStatus
from ledger.projections.attempts import attempt_spans
from ledger.projections.timeline import build_timeline
from tests.unit.test_timeline import at, ev, retried_then_done, rows


def test_each_attempt_has_its_spans_and_a_retry_queues_the_next_one() -> None:
    spans = attempt_spans(build_timeline(rows(*retried_then_done())).entries)
    assert [s.attempt for s in spans] == [0, 1]
    first, second = spans
    assert (first.queued, first.received, first.started, first.ended) == (at(0), at(1), at(2), at(3))
    assert (first.queue_wait, first.start_delay, first.runtime, first.outcome) == (1.0, 1.0, 1.0, TaskStatus.RETRY)
    assert second.queued == at(3)  # no PENDING of its own: queued when attempt 0 ended in RETRY
    assert (second.queue_wait, second.start_delay, second.runtime, second.outcome) == (2.0, 1.0, 1.0, TaskStatus.DONE)
    assert second.total == 4.0


def test_a_running_attempt_has_no_runtime_and_a_late_duplicate_changes_nothing() -> None:
    events = [*retried_then_done()[:3], ev(TaskReceived, 1.5)]  # RECEIVED again, late: the first counts
    (span,) = attempt_spans(build_timeline(rows(*events)).entries)
    assert (span.received, span.started, span.ended, span.outcome) == (at(1), at(2), None, None)
    assert (span.queue_wait, span.runtime, span.total) == (1.0, None, 2.0)
    (bare,) = attempt_spans(build_timeline(rows(ev(TaskStarted, 4))).entries)
    assert (bare.queue_wait, bare.start_delay, bare.runtime) == (None, None, None)
