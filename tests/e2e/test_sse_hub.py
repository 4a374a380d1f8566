"""The server reads the log once for all its event streams (``ledger.http.hub``), on the
real Kafka broker under a real uvicorn server: 200 streams served by one log reader, each
receiving every matching event once; a slow stream dropped with ``event: error`` while the
others go on (and resuming exactly); the cap on open streams answering 503."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ledger.bootstrap import build_event_log
from ledger.domain.events import AnyEvent, TaskEvent
from ledger.domain.statuses import TaskStatus
from ledger.eventlog.base import EventLog
from ledger.http import create_app
from ledger.settings import Settings, load_settings
from ledger.simulate import simulate
from tests.e2e.sse_helpers import (
    DEADLINE_S,
    Message,
    Server,
    amessages,
    collect,
    connections_to,
    messages,
    stream_counts,
    wait_for_counts,
)
from tests.streams import append_all

STREAMS = 200
FILTERS: list[tuple[dict[str, Any], Any]] = [
    ({}, lambda e: True),
    ({"status": "failure"}, lambda e: isinstance(e, TaskEvent) and e.status is TaskStatus.FAILURE),
    ({"name": "email.send"}, lambda e: isinstance(e, TaskEvent) and e.task_name == "email.send"),
    ({"status": ["success", "revoked"]},
     lambda e: isinstance(e, TaskEvent) and e.status in (TaskStatus.DONE, TaskStatus.REVOKED)),
]  # fmt: skip


@pytest.fixture
def settings(kafka_bootstrap: str, kafka_topic: str) -> Settings:
    """The Kafka log; the views are never read by a stream."""
    return load_settings(
        backend="kafka+postgres",
        topic=kafka_topic,
        partitions=4,
        kafka_bootstrap_servers=kafka_bootstrap,
        consumer_poll_timeout_ms=200,
        sse_keepalive_seconds=0.3,
    )


@pytest.fixture
def log(settings: Settings) -> Iterator[EventLog]:
    event_log = build_event_log(settings)
    yield event_log
    event_log.close()


def event_ids(events: list[Message]) -> list[str]:
    return sorted(json.loads(e.data or "{}")["event_id"] for e in events)


def threads(name: str) -> int:
    return sum(1 for t in threading.enumerate() if t.name == name)


async def follow(
    client: httpx.AsyncClient, params: dict[str, Any], want: int, opened: asyncio.Queue[None]
) -> list[Message]:
    """A stream's events until ``want`` arrived and two keep-alives followed (late extras
    would show)."""
    async with client.stream("GET", "/events/stream", params=params) as response:
        assert response.status_code == 200, await response.aread()
        events: list[Message] = []
        idle, first = 0, True
        async for message in amessages(response):
            if first:
                opened.put_nowait(None)
                first = False
            if message.event is not None:
                events.append(message)
            elif len(events) >= want:
                idle += 1
                if idle >= 2:
                    break
        return events


async def two_hundred_streams(
    base_url: str, log: EventLog, events: list[AnyEvent], broker_port: int
) -> list[list[Message]]:
    before = connections_to(broker_port)  # the test's producer, the server's own log client
    limits = httpx.Limits(max_connections=STREAMS + 10)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=httpx.Timeout(30.0)) as client:
        opened: asyncio.Queue[None] = asyncio.Queue()
        wanted = [sum(1 for e in events if FILTERS[i % len(FILTERS)][1](e)) for i in range(STREAMS)]
        tasks = [
            asyncio.create_task(follow(client, FILTERS[i % len(FILTERS)][0], wanted[i], opened)) for i in range(STREAMS)
        ]
        for _ in range(STREAMS):
            await asyncio.wait_for(opened.get(), DEADLINE_S)
        per_stream = threads("sse-reader")  # a thread (and a log consumer) per stream, before the hub
        assert threads("sse-hub") == 1 and per_stream == 0, f"{per_stream} readers of the log for {STREAMS} streams"
        counts = await asyncio.to_thread(wait_for_counts, base_url, streams=STREAMS)
        assert counts["log_readers"] == 1, counts  # one reader of the log for 200 streams
        added = connections_to(broker_port) - before
        assert added <= 4, f"{STREAMS} streams opened {added} connections to the broker: a consumer each?"
        await asyncio.to_thread(append_all, log, events, 50)
        received = await asyncio.wait_for(asyncio.gather(*tasks), DEADLINE_S * 3)
        counts = await asyncio.to_thread(wait_for_counts, base_url, streams=0)
        assert counts["log_readers"] == 1 and counts["dropped_streams_total"] == 0, counts
        return received


def test_two_hundred_streams_are_served_by_one_log_reader(settings: Settings, log: EventLog) -> None:
    events = simulate(60, seed=13, periodic=2, periodic_runs=2)
    broker_port = int(settings.kafka_bootstrap_servers.rsplit(":", 1)[1])
    with Server(create_app(settings)) as base_url:
        received = asyncio.run(two_hundred_streams(base_url, log, events, broker_port))
    for i, got in enumerate(received):
        params, wanted = FILTERS[i % len(FILTERS)]
        expected = sorted(str(e.event_id) for e in events if wanted(e))
        assert expected, params
        assert event_ids(got) == expected, f"stream {i} ({params}): every matching event exactly once"


class Reader:
    """Reads a stream in a thread, keeping every message, until the stream is closed."""

    def __init__(self, response: httpx.Response) -> None:
        self.seen: list[Message] = []
        self.thread = threading.Thread(target=self._read, args=(response,), daemon=True)
        self.thread.start()

    def _read(self, response: httpx.Response) -> None:
        with contextlib.suppress(httpx.HTTPError):  # closed under it at the end
            self.seen.extend(messages(response))

    def events_then_idle(self, want: int) -> list[Message]:
        """The events once ``want`` arrived and two keep-alives followed."""
        deadline = time.monotonic() + DEADLINE_S * 3
        while True:
            seen = list(self.seen)
            events = [m for m in seen if m.event is not None]
            if len(events) >= want:
                after = seen[seen.index(events[want - 1]) + 1 :] if want else seen
                if sum(1 for m in after if m.event is None) >= 2:
                    return events
            assert time.monotonic() < deadline, f"only {len(events)} of {want} events arrived"
            time.sleep(0.05)


def until_error(received: Iterator[Message]) -> tuple[list[Message], str | None, str]:
    """The events before the stream's ``event: error``, the last id seen, the error's detail."""
    events: list[Message] = []
    last_id = None
    for message in received:
        if message.event == "error":
            return events, last_id, json.loads(message.data or "{}")["detail"]
        last_id = message.id or last_id
        if message.event is not None:
            events.append(message)
    raise AssertionError(f"the stream ended after {len(events)} events without an error")


def test_a_slow_stream_is_dropped_with_an_error_while_the_others_go_on(settings: Settings, log: EventLog) -> None:
    appended: list[AnyEvent] = []
    with Server(create_app(settings)) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        with client.stream("GET", "/events/stream") as slow, client.stream("GET", "/events/stream") as fast:
            fast_reader = Reader(fast)
            for seed in range(200):  # until the slow stream (opened, never read) overflows
                batch = simulate(100, seed=seed, periodic=0)
                append_all(log, batch)
                appended += batch
                if stream_counts(base_url)["dropped_streams_total"] == 1:
                    break
            fast_events = fast_reader.events_then_idle(len(appended))
            assert stream_counts(base_url)["dropped_streams_total"] == 1, "the fast stream was never dropped"
            slow_events, last_id, error = until_error(messages(slow))
        assert "too slow" in error and "Last-Event-ID" in error, error
        assert 0 < len(slow_events) < len(appended)
        assert last_id is not None
        with client.stream("GET", "/events/stream", headers={"Last-Event-ID": last_id}) as again:
            rest, _ = collect(messages(again), len(appended) - len(slow_events))
        wait_for_counts(base_url, streams=0, log_readers=1)
    expected = sorted(str(e.event_id) for e in appended)
    assert event_ids(fast_events) == expected, "the fast stream got every event once, never held up"
    assert event_ids(slow_events + rest) == expected, "the dropped stream resumed with no gap and no duplicate"


def test_streams_beyond_the_cap_get_503(settings: Settings, log: EventLog) -> None:
    capped = settings.model_copy(update={"sse_max_streams": 2})
    with Server(create_app(capped)) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        with client.stream("GET", "/events/stream") as one, client.stream("GET", "/events/stream") as two:
            held = [messages(one), messages(two)]  # (a dropped parser would close its connection)
            assert all(next(received).id for received in held)
            refused = client.get("/events/stream")
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "5"
            detail = refused.json()["detail"]
            assert "2 event streams are open" in detail and "LEDGER_SSE_MAX_STREAMS" in detail, detail
        wait_for_counts(base_url, streams=0)
        ledger_events = simulate(3, seed=1, periodic=0)
        with client.stream("GET", "/events/stream") as three:  # a closed stream's slot is free again
            received = messages(three)
            assert next(received).id
            append_all(log, ledger_events)
            events, _ = collect(received, len(ledger_events))
        assert event_ids(events) == sorted(str(e.event_id) for e in ledger_events)
