"""The SSE hub (``ledger.http.hub``) on both real logs, without HTTP: a stream that starts
ahead of the hub's live position, a stream that must catch up while the log keeps growing,
and the hub waiting for its fastest stream while dropping one that takes nothing. Every
message id must resume exactly: reading the log from it gives exactly what came after. And
the hub's reader, cut off, resumes from where it was while its streams wait."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
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


def hub_for(log: EventLog, backlog: int = 5000) -> Hub:
    return Hub(lambda: log, PLAIN, max_streams=10, poll_timeout_ms=50, backlog=backlog)


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
