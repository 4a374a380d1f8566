"""``GET /events/stream`` under a real uvicorn server, on both backends: server-side
filters, a stream's readers and slot released on disconnect, and a ``Last-Event-ID``
resume that delivers exactly the matching events appended while the client was away."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ledger.eventlog.base import EventLog
from ledger.http import create_app
from ledger.projections.store import ViewWriter
from ledger.sdk import Ledger
from ledger.settings import Settings
from tests.e2e.sse_helpers import Message, Server, collect, messages, wait_for_counts


def fail(ledger: Ledger, task_id: str) -> None:
    ledger.pending(task_id, "billing.charge")
    ledger.started(task_id, "billing.charge")
    ledger.failed(task_id, "billing.charge", exc=ValueError("card declined"))


def succeed(ledger: Ledger, task_id: str) -> None:
    ledger.pending(task_id, "email.send")
    ledger.succeeded(task_id, "email.send", result=1)


def one_id_per_partition(log: EventLog, prefix: str) -> list[str]:
    """Task ids that land one in each partition: a resume must be exact in all of them."""
    ids: dict[int, str] = {}
    n = 0
    while len(ids) < log.partitions:
        ids.setdefault(log.partition_for(f"{prefix}-{n}"), f"{prefix}-{n}")
        n += 1
    return list(ids.values())


def readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sse-reader"]


def wait_for_no_reader(base_url: str) -> None:
    """The server forgot the streams whose clients left: no catch-up reader thread is left,
    no stream is counted open, and only the hub's one reader follows the log."""
    deadline = time.monotonic() + 10
    while readers():
        assert time.monotonic() < deadline, "the reader thread outlived its client"
        time.sleep(0.05)
    wait_for_counts(base_url, streams=0, log_readers=1)


def task_ids(events: list[Message]) -> list[str]:
    return [json.loads(e.data or "{}")["task_id"] for e in events]


@pytest.fixture
def base_url(settings: Settings, store: ViewWriter) -> Iterator[str]:
    fast = settings.model_copy(update={"sse_keepalive_seconds": 0.3})
    with Server(create_app(fast)) as url:
        yield url


def stream(client: httpx.Client, params: dict[str, Any], last_id: str | None = None) -> Any:
    headers = {"Last-Event-ID": last_id} if last_id else {}
    return client.stream("GET", "/events/stream", params=params, headers=headers)


def test_a_filtered_stream_resumes_exactly_after_the_last_event_id(base_url: str, log: EventLog) -> None:
    ledger = Ledger(log)
    with httpx.Client(base_url=base_url, timeout=httpx.Timeout(10.0)) as client:
        with stream(client, {"status": "failure"}) as response:
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
            received = messages(response)
            first = next(received)
            assert first.event is None and first.id and first.id.count(":") == log.partitions
            seen = one_id_per_partition(log, "seen-failure")
            for task_id in seen:
                fail(ledger, task_id)
                succeed(ledger, f"{task_id}-success")
            events, last_id = collect(received, len(seen), idle_after=0)
        assert {e.event for e in events} == {"task.failed"} and sorted(task_ids(events)) == sorted(seen)
        wait_for_no_reader(base_url)

        missed = one_id_per_partition(log, "missed-failure")
        for task_id in missed:
            fail(ledger, task_id)
            succeed(ledger, f"{task_id}-success")
        with stream(client, {"status": "FAILURE"}, last_id) as response:
            events, _ = collect(messages(response), len(missed))
        assert sorted(task_ids(events)) == sorted(missed), "no gap, no duplicate, nothing unfiltered"
        assert {e.event for e in events} == {"task.failed"}
        envelope = json.loads(events[0].data or "{}")
        assert envelope["exc_type"].endswith("ValueError") and envelope["version"] == 2
    wait_for_no_reader(base_url)


def test_from_beginning_replays_the_log_with_a_task_filter(base_url: str, log: EventLog) -> None:
    ledger = Ledger(log)
    fail(ledger, "replayed")
    succeed(ledger, "other")
    with (
        httpx.Client(base_url=base_url, timeout=httpx.Timeout(10.0)) as client,
        stream(client, {"from": "beginning", "task_id": ["replayed", "absent"]}) as response,
    ):
        events, _ = collect(messages(response), 3)
    assert [e.event for e in events] == ["task.pending", "task.started", "task.failed"]
    assert set(task_ids(events)) == {"replayed"}
    wait_for_no_reader(base_url)
