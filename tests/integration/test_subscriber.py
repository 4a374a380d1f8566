"""The subscriber SDK on both backends: typed, filtered, resumable, every start mode."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.bootstrap import build_event_log
from ledger.consumers.positions import MemoryPositions
from ledger.consumers.subscriber import Subscriber
from ledger.domain.events import AnyEvent, TaskEvent, TaskFailed
from ledger.domain.statuses import TaskStatus
from ledger.eventlog.base import EventLog, EventLogUnavailable
from ledger.eventlog.group import WholeLogSource
from ledger.settings import Settings, load_settings
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


def test_close_saves_what_was_handled_leaves_the_group_and_is_idempotent(
    settings: Settings, log: EventLog, kafka_bootstrap: str
) -> None:
    append_all(log, stream(seed=57, tasks=20, duplicates=0, late=0))
    group = unique_name("closing")
    got: list[AnyEvent] = []
    with subscribe(group, settings=settings, start="beginning") as subscriber:
        for event in subscriber:
            got.append(event)
            if len(got) == 3:
                break  # left inside the third body: the first two ran to the end
    subscriber.close()  # again: harmless
    if settings.backend.value == "kafka+postgres":
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="ledger-tests")
        try:
            description = admin.describe_groups([group])[group]
        finally:
            admin.close()
        assert description["members"] == []  # left the group: no session timeout to wait out
    with pytest.raises(RuntimeError, match="closed"):
        next(iter(subscriber))
    again = collect(settings, group, 1)
    assert again[0].event_id == got[2].event_id  # resumes at the event in hand, after the two handled


def test_filtered_out_positions_advance_with_the_next_save(settings: Settings) -> None:
    settings = settings.model_copy(update={"partitions": 1})
    events = stream(seed=58, tasks=30, duplicates=0, late=0)
    with build_event_log(settings) as log:
        append_all(log, events)
    failures = [e for e in events if isinstance(e, TaskEvent) and e.status is TaskStatus.FAILURE]
    assert failures and events.index(failures[-1]) < len(events) - 1  # filtered-out events follow
    stop = threading.Event()
    handled: list[AnyEvent] = []

    def handle(event: AnyEvent) -> None:
        handled.append(event)
        if len(handled) == len(failures):
            stop.set()  # the loop ends after the records in hand, filtered-out ones included

    group = unique_name("filtered")
    subscribe(group, settings=settings, statuses=["FAILURE"], start="beginning").run(handle, stop=stop)
    later = stream(seed=59, tasks=5, duplicates=0, late=0)
    with build_event_log(settings) as log:
        append_all(log, later)
    rest = collect(settings, group, len(later))  # the group, without a filter now
    assert [e.event_id for e in rest] == [e.event_id for e in later]  # none again, none skipped


def test_save_every_below_1_is_refused_naming_it(settings: Settings) -> None:
    with pytest.raises(ValueError, match="save_every must be at least 1"):
        subscribe(unique_name("bad"), settings=settings, save_every=0)


class FlakyPositions(MemoryPositions):
    """Positions whose store can be switched off, counting the saves tried while it is."""

    def __init__(self) -> None:
        super().__init__()
        self.down, self.tried_while_down = False, 0

    def save(self, positions: dict[int, int]) -> None:
        if self.down:
            self.tried_while_down += 1
            raise EventLogUnavailable("positions store away")
        super().save(positions)


def test_a_failed_save_is_retried_before_the_next_poll_not_per_event(tmp_path: Path) -> None:
    settings = load_settings(backend="embedded", data_dir=tmp_path, topic="events", partitions=1)
    events = stream(seed=60, tasks=6, periodic=0, duplicates=0, late=0)
    positions, stop = FlakyPositions(), threading.Event()
    with build_event_log(settings) as log:
        append_all(log, events)
        subscriber = Subscriber(WholeLogSource(log), positions, log, start={0: 0})
        handled: list[AnyEvent] = []

        def handle(event: AnyEvent) -> None:
            handled.append(event)
            positions.down = 3 <= len(handled) < 10  # away from the 3rd body's save to the 9th's
            if len(handled) == len(events):
                stop.set()

        subscriber.run(handle, stop=stop)
    assert len(handled) == len(events)
    assert positions.tried_while_down == 1  # one failed save, not one timeout per event
    assert positions.saved == {0: len(events)}  # saved again once the store answered
