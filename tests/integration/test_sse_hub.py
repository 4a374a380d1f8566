"""The SSE hub (``ledger.http.hub``) on both real logs, without HTTP: a stream that starts
ahead of the hub's live position, a stream that must catch up while the log keeps growing,
and the hub waiting for its fastest stream while dropping one that takes nothing. Every
message id must resume exactly: reading the log from it gives exactly what came after. And
the hub's reader, cut off or dead, resumes from where it was while its streams wait; and
streams resuming together read the log a few at a time."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from ledger.codec import PLAIN
from ledger.consumers.subscriber import EventFilter
from ledger.domain.events import AnyEvent
from ledger.eventlog.base import EventLog, EventLogUnavailable, Start, StoredRecord
from ledger.eventlog.sqlite import SqliteEventLog
from ledger.http.feed import Failure, Item, Listener, Message
from ledger.http.hub import Hub
from ledger.simulate import simulate
from ledger.wire import decode
from tests.streams import append_all

DEADLINE_S = 30.0


def hub_for(log: EventLog, backlog: int = 5000, catch_up_readers: int = 8) -> Hub:
    return Hub(
        lambda: log, PLAIN, max_streams=10, poll_timeout_ms=50, backlog=backlog, catch_up_readers=catch_up_readers
    )


@pytest.fixture
def hubs() -> Iterator[list[Hub]]:
    made: list[Hub] = []
    yield made
    for hub in made:
        hub.shutdown()


def at_end(log: EventLog) -> dict[int, int]:
    return log.resolve("end")


def take(listener: Listener) -> list[Item]:
    return asyncio.run(listener.mailbox.take(0.1))


def receive(listener: Listener, want: int) -> list[Message]:
    """Messages (events and checkpoints) until ``want`` events arrived."""
    got: list[Message] = []
    deadline = time.monotonic() + DEADLINE_S
    while sum(1 for m in got if m.data is not None) < want:
        assert time.monotonic() < deadline, f"{sum(1 for m in got if m.data)} of {want} events arrived"
        for item in take(listener):
            assert isinstance(item, Message), item
            got.append(item)
    return got


def assert_each_id_resumes_exactly(log: EventLog, messages: list[Message]) -> None:
    """Reading the log from any message's id gives exactly the events after it (the log no
    longer grows, and ``messages`` holds every event up to its end)."""
    records = [(r.partition, r.offset, str(decode(r).event_id)) for r in log.read("beginning")]
    for i, message in enumerate(messages):
        cursor = {int(p): int(o) for p, o in (pair.split(":") for pair in message.id.split(","))}
        from_cursor = sorted(event for partition, offset, event in records if offset >= cursor[partition])
        after = sorted(event_id(m) for m in messages[i + 1 :] if m.data is not None)
        assert from_cursor == after, f"resume from {message.id}"
    assert any(m.data is not None for m in messages)


def event_id(message: Message) -> str:
    return str(json.loads(message.data or "{}")["event_id"])


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_stream_ahead_of_the_hub_skips_to_its_cursor_and_a_stream_that_takes_nothing_is_dropped(
    log: EventLog, hubs: list[Hub]
) -> None:
    hub = hub_for(log, backlog=8)  # hands out 2 records at a time
    hubs.append(hub)
    stuck = hub.open(EventFilter(), at_end)  # never read: the hub waits for it, then drops it
    append_all(log, simulate(8, seed=1, periodic=0))
    wait_for(lambda: stuck.mailbox.pending > 8 - 3, "the hub filled the only stream's mailbox")
    ahead = hub.open(EventFilter(), at_end)  # the log's end: past the stalled hub
    assert ahead.ahead, "the stream starts ahead of the hub"
    later: list[AnyEvent] = simulate(5, seed=2, periodic=0)
    append_all(log, later)
    got = receive(ahead, len(later))
    assert sorted(event_id(m) for m in got if m.data) == sorted(str(e.event_id) for e in later)
    assert_each_id_resumes_exactly(log, [Message(ahead.start_id), *got])
    assert take(stuck) == [Failure(take_reason(hub))]
    assert hub.stats().dropped == 1


def take_reason(hub: Hub) -> str:
    return (
        f"too slow: {hub.backlog} messages were waiting for this stream, so it was dropped "
        "(the others go on); reconnect with Last-Event-ID to resume where it stopped"
    )


def test_a_stream_catches_up_from_the_beginning_while_the_log_grows(log: EventLog, hubs: list[Hub]) -> None:
    hub = hub_for(log)
    hubs.append(hub)
    live = hub.open(EventFilter(), at_end)  # the hub runs, and moves with the appends
    before = simulate(40, seed=3, periodic=1)
    append_all(log, before, 20)
    during = simulate(60, seed=4, periodic=0)
    writer = threading.Thread(target=append_all, args=(log, during, 5), daemon=True)
    writer.start()
    resumed = hub.open(EventFilter(), lambda event_log: event_log.resolve("beginning"))
    everything = before + during
    got = receive(resumed, len(everything))
    writer.join(DEADLINE_S)
    assert sorted(event_id(m) for m in got if m.data) == sorted(str(e.event_id) for e in everything)
    assert_each_id_resumes_exactly(log, [Message(resumed.start_id), *got])
    assert sorted(event_id(m) for m in receive(live, len(everything)) if m.data) == sorted(
        str(e.event_id) for e in everything
    )
    wait_for(lambda: hub.stats().readers == 1, "the catch-up reader ended once the stream joined")
    assert hub.stats().streams == 2


class CutOffOnce(SqliteEventLog):
    """The embedded log whose first subscription fails after its first records, as a
    reader does when its broker goes away."""

    cut = False

    def subscribe(
        self, start: Start = "end", *, stop_event: threading.Event | None = None, poll_timeout_ms: int | None = None
    ) -> Iterator[list[StoredRecord]]:
        batches = super().subscribe(start, stop_event=stop_event, poll_timeout_ms=poll_timeout_ms)
        if self.cut:
            return batches
        self.cut = True
        return self._cut(batches)

    @staticmethod
    def _cut(batches: Iterator[list[StoredRecord]]) -> Iterator[list[StoredRecord]]:
        for batch in batches:
            yield batch
            if batch:
                raise EventLogUnavailable("the broker went away")


def test_the_hub_resumes_from_its_position_after_its_reader_failed(tmp_path: Path, hubs: list[Hub]) -> None:
    log = CutOffOnce(tmp_path / "events.db", "events", partitions=4)
    hub = hub_for(log)
    hubs.append(hub)
    listener = hub.open(EventFilter(), at_end)
    first, second = simulate(5, seed=5, periodic=0), simulate(5, seed=6, periodic=0)
    append_all(log, first)
    wait_for(lambda: log.cut, "the reader was cut off")
    append_all(log, second)
    got = receive(listener, len(first) + len(second))  # never a Failure: the stream waited
    assert sorted(event_id(m) for m in got if m.data) == sorted(str(e.event_id) for e in first + second)
    assert_each_id_resumes_exactly(log, [Message(listener.start_id), *got])
    log.close()


class CountsReads(SqliteEventLog):
    """The embedded log, counting the reads (catch-ups) open at once. The first read waits
    a moment for others to open beside it, so reads left unbounded would show here."""

    WINDOW_S = 2.0

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.open_reads = self.most_open_reads = self.reads = 0
        self._count = threading.Condition()

    def read(self, start: Start = "beginning", *, stop: Mapping[int, int] | None = None) -> Iterator[StoredRecord]:
        with self._count:
            self.open_reads += 1
            self.reads += 1
            self.most_open_reads = max(self.most_open_reads, self.open_reads)
            self._count.notify_all()
            if self.reads == 1:
                self._count.wait_for(lambda: self.open_reads > 1, self.WINDOW_S)
        try:
            yield from super().read(start, stop=stop)
        finally:
            with self._count:
                self.open_reads -= 1


def test_streams_resuming_together_read_the_log_a_few_at_a_time(tmp_path: Path, hubs: list[Hub]) -> None:
    log = CountsReads(tmp_path / "events.db", "events", partitions=4)
    hub = hub_for(log, backlog=8, catch_up_readers=1)  # one catch-up reading at a time
    hubs.append(hub)
    events = simulate(10, seed=7, periodic=0)
    append_all(log, events)
    resumed = [hub.open(EventFilter(), lambda event_log: event_log.resolve("beginning")) for _ in range(3)]
    # every stream gets its first messages although none is taken: a catch-up whose client
    # has no room left closes its reader and hands the only slot on
    wait_for(lambda: all(not s.mailbox.has_room(3) for s in resumed), "each resumed stream got a first share")
    assert hub.stats().readers == 1, "no catch-up reader stays open while its client has no room"
    for stream in resumed:
        got = receive(stream, len(events))
        assert sorted(event_id(m) for m in got if m.data) == sorted(str(e.event_id) for e in events)
        assert_each_id_resumes_exactly(log, [Message(stream.start_id), *got])
    assert log.most_open_reads == 1, f"{log.most_open_reads} catch-ups read the log at once"
    log.close()


class DiesOnce(SqliteEventLog):
    """The embedded log whose first subscription ends its thread without a word (as
    ``SystemExit`` does in a thread)."""

    died = False

    def subscribe(
        self, start: Start = "end", *, stop_event: threading.Event | None = None, poll_timeout_ms: int | None = None
    ) -> Iterator[list[StoredRecord]]:
        if self.died:
            return super().subscribe(start, stop_event=stop_event, poll_timeout_ms=poll_timeout_ms)
        self.died = True
        raise SystemExit


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the death, on purpose
def test_a_reader_that_died_is_started_again_from_where_it_was(tmp_path: Path, hubs: list[Hub]) -> None:
    log = DiesOnce(tmp_path / "events.db", "events", partitions=4)
    hub = hub_for(log)
    hubs.append(hub)
    first = hub.open(EventFilter(), at_end)
    wait_for(lambda: log.died and not any(t.name == "sse-hub" for t in threading.enumerate()), "the reader died")
    events = simulate(5, seed=8, periodic=0)
    append_all(log, events)
    second = hub.open(EventFilter(task_ids=["nobody"]), at_end)  # a new stream finds the reader dead
    got = receive(first, len(events))
    assert sorted(event_id(m) for m in got if m.data) == sorted(str(e.event_id) for e in events)
    assert_each_id_resumes_exactly(log, [Message(first.start_id), *got])
    assert [m.data for m in receive(second, 0)] == []
    log.close()
