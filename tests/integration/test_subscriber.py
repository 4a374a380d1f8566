"""The subscriber SDK on both backends: typed, filtered, resumable, every start mode."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from ledger.domain.events import AnyEvent, TaskEvent, TaskFailed
from ledger.domain.statuses import TaskStatus
from ledger.eventlog.base import EventLog
from ledger.settings import Settings
from ledger.subscribe import subscribe
from tests.helpers import unique_name
from tests.streams import append_all, stream


def collect(settings: Settings, group: str | None, n: int, **options: object) -> list[AnyEvent]:
    got: list[AnyEvent] = []
    subscribe(group, settings=settings, **options).run(got.append, max_events=n)  # type: ignore[arg-type]
    return got


def test_filtered_typed_events_and_a_restart_resumes_without_gap_or_duplicate(
    settings: Settings, log: EventLog
) -> None:
    events = stream(seed=51, tasks=150, duplicates=0, late=0)
    append_all(log, events)
    failures = [e for e in events if isinstance(e, TaskEvent) and e.status is TaskStatus.FAILURE]
    group = unique_name("alerts")
    first = collect(settings, group, 5, statuses=["failure"], start="beginning")
    rest = collect(settings, group, len(failures) - 5, statuses=["FAILURE"])  # a new process resumes
    got = first + rest
    assert all(isinstance(e, TaskFailed) for e in got)
    assert sorted(e.event_id for e in got) == sorted(e.event_id for e in failures)  # no gap, no duplicate


def test_a_handler_that_raises_gets_the_event_again(settings: Settings, log: EventLog) -> None:
    append_all(log, stream(seed=52, tasks=20, duplicates=0, late=0))
    group = unique_name("flaky")
    seen: list[AnyEvent] = []

    def boom(event: AnyEvent) -> None:
        seen.append(event)
        if len(seen) == 3:
            raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError):
        subscribe(group, settings=settings, start="beginning").run(boom)
    again = collect(settings, group, 1)
    assert again[0].event_id == seen[2].event_id  # not saved: delivered again


def test_start_at_a_timestamp_or_at_positions(settings: Settings, log: EventLog) -> None:
    before = stream(seed=53, tasks=10, duplicates=0, late=0)
    after = stream(seed=54, tasks=10, duplicates=0, late=0)
    append_all(log, before)
    time.sleep(0.05)
    cut = datetime.now(UTC)
    time.sleep(0.05)
    positions = append_all(log, after)
    since = collect(settings, unique_name("since"), len(after), start=cut)
    assert {e.event_id for e in since} == {e.event_id for e in after}
    starts = {
        p: min(pos.offset for pos in positions if pos.partition == p) for p in {pos.partition for pos in positions}
    }
    for p in range(log.partitions):
        starts.setdefault(p, log.end_offsets()[p])
    explicit = collect(settings, unique_name("at"), len(after), start=starts)
    assert {e.event_id for e in explicit} == {e.event_id for e in after}


def test_start_at_the_end_sees_only_what_comes_next(settings: Settings, log: EventLog) -> None:
    append_all(log, stream(seed=55, tasks=10, duplicates=0, late=0))
    later = stream(seed=56, tasks=5, duplicates=0, late=0)
    subscriber = subscribe(unique_name("tail"), settings=settings, start="end")
    got: list[AnyEvent] = []
    worker = threading.Thread(target=lambda: subscriber.run(got.append, max_events=len(later)))
    worker.start()
    deadline = time.monotonic() + 30
    while not subscriber._seen:  # joined and positioned
        assert time.monotonic() < deadline
        time.sleep(0.05)
    append_all(log, later)
    worker.join(30)
    assert {e.event_id for e in got} == {e.event_id for e in later}
