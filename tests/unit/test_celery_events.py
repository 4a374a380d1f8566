"""Celery's own task and worker events (built with ``celery.events.Event``, as workers send
them) → the ledger's events: attempts derived from ``retries``, ids shared with
``install(app)``, the original worker and time kept, reprs parsed back; a worker's
heartbeats with their interval, load and counts, each id from (hostname, type, time)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from celery.events import Event

from ledger.contrib import celery_reprs
from ledger.contrib.celery_events import CeleryEventTranslator
from ledger.domain.aggregates import step_event_id
from ledger.domain.events import (
    TaskFailed,
    TaskPending,
    TaskReceived,
    TaskRetried,
    TaskRevoked,
    TaskSucceeded,
    WorkerHeartbeat,
    WorkerOffline,
    WorkerOnline,
)
from ledger.domain.fold import fold
from ledger.domain.statuses import TaskStatus
from ledger.domain.workers import worker_event_id
from ledger.sdk import InvalidEvent

T0 = 1_780_000_000.0
WORKER = {"hostname": "celery@vm-3", "pid": 4242}


def life() -> list[dict[str, object]]:
    """A task that fails once (retried) and then succeeds, as a fleet's events show it."""
    return [
        Event("task-sent", uuid="t1", name="shop.charge", args="(42, 'eur')", kwargs="{'retry': True}", retries=0,
              eta=None, hostname="web@api-1", pid=10, timestamp=T0),
        Event("task-received", uuid="t1", name="shop.charge", args="(42, 'eur')", kwargs="{'retry': True}", retries=0,
              timestamp=T0 + 1, **WORKER),
        Event("task-started", uuid="t1", timestamp=T0 + 2, **WORKER),
        Event("task-retried", uuid="t1", exception="ConnectionError('gateway busy')", traceback="Traceback…",
              timestamp=T0 + 3, **WORKER),
        Event("task-received", uuid="t1", name="shop.charge", args="(42, 'eur')", kwargs="{}", retries=1,
              eta="2026-06-01T00:00:05+00:00", timestamp=T0 + 4, **WORKER),
        Event("task-started", uuid="t1", timestamp=T0 + 5, **WORKER),
        Event("task-succeeded", uuid="t1", result="{'charged': True, 'order': 42}", runtime=0.25,
              timestamp=T0 + 6, **WORKER),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("order", "attempts"),
    [
        # the retry's next attempt announced (sent, received) before this attempt's task-retried
        ([0, 1, 2, 4, 3, 5, 6], [0, 0, 0, 1, 0, 1, 1]),
        # its task-sent too (task_send_sent_event): the child publishes it while still running
        ([0, 1, 2, "sent-1", 3, 4, 5, 6], [0, 0, 0, 1, 0, 1, 1, 1]),
        # the next attempt's task-started even before the task-retried: it cannot be told from
        # a repeat of attempt 0's (the same step, one event); the RETRY and DONE stay right
        ([0, 1, 2, 4, 5, 3, 6], [0, 0, 0, 1, 0, 0, 1]),
    ],
)
def test_a_retrys_next_attempt_announced_early_leaves_the_running_one_its_own_events(
    order: list[int | str], attempts: list[int]
) -> None:
    translator, events = CeleryEventTranslator(), life()
    sent_again = {**events[0], "retries": 1, "timestamp": T0 + 2.5}
    steps = [translator.translate(sent_again if i == "sent-1" else events[int(i)]) for i in order]
    assert [e.attempt for e in steps if e] == attempts
    retried = next(e for e in steps if e and e.type == "task.retried")
    done = next(e for e in steps if e and e.type == "task.succeeded")
    assert (retried.attempt, done.attempt) == (0, 1)


def test_the_first_event_seen_of_a_late_attempt_starts_the_count_there() -> None:
    translator = CeleryEventTranslator()  # the ingester started while attempt 3 was queued
    events = [Event("task-received", uuid="t2", retries=3, timestamp=T0, **WORKER),
              Event("task-started", uuid="t2", timestamp=T0 + 1, **WORKER),
              Event("task-succeeded", uuid="t2", result="1", timestamp=T0 + 2, **WORKER)]  # fmt: skip
    assert [translator.translate(e).attempt for e in events] == [3, 3, 3]  # type: ignore[union-attr]


def test_a_lifes_events_translate_with_attempts_a_worker_would_give() -> None:
    translator = CeleryEventTranslator()
    events = [translator.translate(e) for e in life()]
    assert [(e.type, e.attempt) for e in events if e] == [
        ("task.pending", 0), ("task.received", 0), ("task.started", 0), ("task.retried", 0),
        ("task.received", 1), ("task.started", 1), ("task.succeeded", 1),
    ]  # fmt: skip
    sent, received, _, retried, received_again, _, done = events
    assert isinstance(sent, TaskPending) and sent.args == [42, "eur"] and sent.kwargs == {"retry": True}
    assert (sent.emitter.host, sent.emitter.worker) == ("api-1", None)
    assert isinstance(received, TaskReceived) and received.occurred_at == datetime.fromtimestamp(T0 + 1, UTC)
    assert (received.emitter.host, received.emitter.pid, received.emitter.worker) == ("vm-3", 4242, "celery@vm-3")
    assert isinstance(retried, TaskRetried) and (retried.exc_type, retried.exc_message) == (
        "ConnectionError", "gateway busy")
    assert retried.exc_args == ["gateway busy"]
    assert isinstance(received_again, TaskReceived) and received_again.eta == datetime(2026, 6, 1, 0, 0, 5, tzinfo=UTC)
    assert isinstance(done, TaskSucceeded) and done.result == {"charged": True, "order": 42} and done.runtime == 0.25
    state = fold([(e, None) for e in events if e])
    assert state is not None and (state.status, state.retries, state.worker) == (TaskStatus.DONE, 1, "celery@vm-3")


def test_ids_are_the_steps_so_install_and_the_event_stream_record_one_event() -> None:
    translator = CeleryEventTranslator()
    events = [translator.translate(e) for e in life()]
    assert events[2] is not None and events[2].event_id == step_event_id("t1", TaskStatus.STARTED, 0)
    again = [CeleryEventTranslator().translate(e) for e in life()[:3]]  # a second ingester, same events
    assert [e.event_id for e in again if e] == [e.event_id for e in events[:3] if e]


def test_reprs_that_are_not_literals_and_failures_are_kept_as_text() -> None:
    translator = CeleryEventTranslator()
    sent = translator.translate(Event("task-sent", uuid="t2", name="x", args="(<Order 7>,)", kwargs="{'o': <Order 7>}",
                                      retries=0, timestamp=T0))  # fmt: skip
    assert isinstance(sent, TaskPending) and sent.args == ["(<Order 7>,)"]
    assert sent.kwargs == {"repr": "{'o': <Order 7>}"}
    failed = translator.translate(Event("task-failed", uuid="t2", exception="KeyError('sku')", traceback="tb",
                                        timestamp=T0 + 1, **WORKER))  # fmt: skip
    assert isinstance(failed, TaskFailed) and (failed.exc_type, failed.exc_args) == ("KeyError", ["sku"])
    odd = translator.translate(Event("task-failed", uuid="t3", exception="<weird>", timestamp=T0, **WORKER))
    assert isinstance(odd, TaskFailed) and (odd.exc_type, odd.exc_message) == ("Exception", "<weird>")


def test_each_repr_text_is_read_once_and_its_value_is_never_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[str] = []
    real = celery_reprs.read_plain

    def read_plain(text: str) -> Any:
        read.append(text)
        return real(text)

    monkeypatch.setattr(celery_reprs, "read_plain", read_plain)
    translator, (sent, received) = CeleryEventTranslator(), life()[:2]
    first, second = translator.translate(sent), translator.translate(received)
    assert isinstance(first, TaskPending) and isinstance(second, TaskReceived)
    assert read == ["(42, 'eur')", "{'retry': True}"]  # task-received: the same texts, not read again
    assert (first.args, first.kwargs) == (second.args, second.kwargs) == ([42, "eur"], {"retry": True})
    assert first.args is not second.args and first.kwargs is not second.kwargs
    first.args.append("changed")  # type: ignore[union-attr]  # frozen event, but a list inside is not
    first.kwargs["retry"] = False  # type: ignore[index]
    third = translator.translate({**received, "uuid": "t9"})
    assert isinstance(third, TaskReceived) and (third.args, third.kwargs) == ([42, "eur"], {"retry": True})
    assert second.args == [42, "eur"] and len(read) == 2


def test_a_repr_that_is_not_json_takes_the_fallback_every_time(caplog: pytest.LogCaptureFixture) -> None:
    translator = CeleryEventTranslator()
    with caplog.at_level(logging.WARNING, logger="ledger.sdk"):
        done = [translator.translate(Event("task-succeeded", uuid=f"t{i}", result="{1, 2}", timestamp=T0, **WORKER))
                for i in range(2)]  # fmt: skip
    assert [e.result for e in done if isinstance(e, TaskSucceeded)] == ["{1, 2}", "{1, 2}"]
    warning = "ledger: result is not JSON (Object of type set is not JSON serializable); recording its repr()"
    assert [record.getMessage() for record in caplog.records] == [warning, warning]


def test_one_emitter_per_worker_and_a_broken_one_still_named_with_the_rest() -> None:
    translator = CeleryEventTranslator()
    started, done = (translator.translate(e) for e in life()[5:7])
    assert started is not None and done is not None and started.emitter is done.emitter
    long = Event("task-started", uuid="t5", name="n" * 300, timestamp=T0, hostname="celery@" + "h" * 300, pid=1)
    with pytest.raises(InvalidEvent) as caught:
        translator.translate(long)
    too_long = "String should have at most 255 characters"
    assert str(caught.value) == f"emitter.host: {too_long}; emitter.worker: {too_long}; task_name: {too_long}"


def test_what_is_not_a_transition_is_none_and_a_broken_event_names_its_field() -> None:
    translator = CeleryEventTranslator()
    assert translator.translate(Event("task-progress", uuid="t4", timestamp=T0, **WORKER)) is None  # an app's own
    assert translator.translate(Event("task-rejected", uuid="t4", requeue=True, timestamp=T0)) is None
    rejected = translator.translate(Event("task-rejected", uuid="t4", requeue=False, timestamp=T0))
    assert isinstance(rejected, TaskRevoked) and rejected.reason and "rejected" in rejected.reason
    with pytest.raises(InvalidEvent, match=r"^uuid: a task-started event needs the task id"):
        translator.translate(Event("task-started", timestamp=T0))
    with pytest.raises(InvalidEvent, match=r"^task_id: must not contain NUL characters"):
        translator.translate(Event("task-started", uuid="a\x00b", timestamp=T0))


def test_sent_and_received_carry_the_workflow_and_the_routing() -> None:
    translator = CeleryEventTranslator()
    sent = translator.translate(Event("task-sent", uuid="t3", name="x", root_id="r", parent_id="p", queue="high",
                                      exchange="", routing_key="high", expires="2030-01-01T00:00:00+00:00",
                                      hostname="web@api-1", pid=10, timestamp=T0))  # fmt: skip
    received = translator.translate(Event("task-received", uuid="t3", name="x", root_id="r", parent_id="p",
                                          timestamp=T0 + 1, **WORKER))  # fmt: skip
    assert isinstance(sent, TaskPending) and isinstance(received, TaskReceived)
    assert (sent.root_id, sent.parent_id, sent.queue, sent.exchange, sent.routing_key) == ("r", "p", "high", "", "high")
    assert sent.expires == datetime(2030, 1, 1, tzinfo=UTC)
    assert (received.root_id, received.parent_id, received.queue) == ("r", "p", None)


def heartbeat(kind: str = "worker-heartbeat", at: float = T0, **details: object) -> dict[str, object]:
    """A worker event as ``celery.worker.heartbeat.Heart`` sends it."""
    sent = {"freq": 2.0, "active": 1, "processed": 42, "loadavg": (0.52, 0.57, 0.76), "sw_ident": "py-celery",
            "sw_ver": "5.7.0", "sw_sys": "Linux", **details}  # fmt: skip
    return Event(kind, timestamp=at, utcoffset=0, clock=7, **WORKER, **sent)  # type: ignore[no-any-return]


def test_worker_events_keep_the_interval_software_load_and_counts() -> None:
    translator = CeleryEventTranslator()
    kinds = ("worker-online", "worker-heartbeat", "worker-offline")
    online, beat, offline = (translator.translate(heartbeat(kind, T0 + i)) for i, kind in enumerate(kinds))
    assert isinstance(online, WorkerOnline) and isinstance(beat, WorkerHeartbeat)
    assert isinstance(offline, WorkerOffline)
    assert (beat.hostname, beat.freq, beat.loadavg, beat.processed, beat.active) == (
        "celery@vm-3", 2.0, (0.52, 0.57, 0.76), 42, 1)
    assert (beat.sw_ident, beat.sw_ver, beat.sw_sys) == ("py-celery", "5.7.0", "Linux")
    assert beat.occurred_at == datetime.fromtimestamp(T0 + 1, UTC)
    assert (beat.emitter.host, beat.emitter.pid, beat.emitter.worker) == ("vm-3", 4242, "celery@vm-3")
    assert beat.event_id == worker_event_id("celery@vm-3", "worker.heartbeat", beat.occurred_at)
    again = CeleryEventTranslator().translate(heartbeat(at=T0 + 1))  # a second ingester, the same heartbeat
    assert again == beat
    assert CeleryEventTranslator().translate(heartbeat(at=T0 + 3)).event_id != beat.event_id  # type: ignore[union-attr]
    bare = translator.translate(Event("worker-heartbeat", timestamp=T0, **WORKER))
    assert isinstance(bare, WorkerHeartbeat) and bare.freq is None and bare.loadavg is None


@pytest.mark.parametrize(("event", "message"), [
    ({"type": "worker-heartbeat", "timestamp": T0}, r"^hostname: a worker-heartbeat event needs the worker's hostname"),
    ({"type": "worker-online", "hostname": "celery@x"}, r"^timestamp: a worker-online event needs its time"),
    ({"type": "worker-online", "hostname": "celery@x", "timestamp": 1e300}, r"^timestamp: a worker-online event"),
    (heartbeat(freq=0), r"^freq: Input should be greater than 0"),
    (heartbeat(loadavg="high"), r"^loadavg: "),
    (heartbeat(processed=-1), r"^processed: Input should be greater than or equal to 0"),
])  # fmt: skip
def test_a_broken_worker_event_names_its_field(event: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidEvent, match=message):
        CeleryEventTranslator().translate(event)
