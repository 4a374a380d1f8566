"""The Celery-events ingester in this process, on the real brokers (RabbitMQ, Redis) and both
ledgers: bad messages on the event exchange are dead-lettered with their raw body while the
good ones go through; while the log refuses appends it holds its batch and reads nothing
more (RabbitMQ keeps the rest queued), then resumes losing nothing; on RabbitMQ events
published while no ingester runs wait in its queue."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from ledger.bootstrap import build_codec, build_event_log, build_ingester, build_view_reader
from ledger.consumers.celery_broker import BrokerEvents, EventSourceConfig
from ledger.consumers.celery_ingest import Ingester
from ledger.consumers.deadletter import DeadLetterSink, dead_letter_topic, read_dead_letter
from ledger.contrib.celery_events import CeleryEventTranslator
from ledger.domain.events import TaskEvent
from ledger.domain.statuses import TaskStatus
from ledger.retry import RetryPolicy
from ledger.settings import Settings
from ledger.wire import decode
from tests.celery_helpers import BreakableLog, delete_queues, eventually, publish_raw, queue_depth
from tests.helpers import unique_name
from tests.streams import project_all

JSON = "application/json"
FAST = RetryPolicy(first_s=0.05, cap_s=0.2)


@pytest.fixture(params=["rabbitmq", "redis"])
def broker(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def source(broker: str) -> Iterator[EventSourceConfig]:
    config = EventSourceConfig(broker, queue=unique_name("ledger.celeryev"), prefetch=20)
    yield config
    if config.broker == "rabbitmq":
        delete_queues(broker, [config.queue])


def sent(task_id: str, **fields: Any) -> dict[str, Any]:
    """A Celery ``task-sent`` event as a client publishes it."""
    return {"type": "task-sent", "uuid": task_id, "name": "shop.order", "args": "(1,)", "kwargs": "{}",
            "retries": 0, "hostname": "gen1@client", "pid": 7, "timestamp": time.time(), **fields}  # fmt: skip


def message(event: dict[str, Any] | list[dict[str, Any]]) -> tuple[str, bytes, str]:
    first = event[0] if isinstance(event, list) else event
    group, _, action = str(first["type"]).partition("-")
    return (f"{group}.multi" if isinstance(event, list) else f"{group}.{action}", json.dumps(event).encode(), JSON)


def appended_tasks(settings: Settings) -> Counter[str]:
    """How many events of each task the log holds (other events, workers' say, aside: the
    broker may be shared with other workers)."""
    with build_event_log(settings) as log:
        events = [decode(record) for record in log.read()]
    return Counter(e.task_id for e in events if isinstance(e, TaskEvent))


@contextmanager
def running(ingester: Ingester) -> Iterator[Ingester]:
    """``ingester.run`` in a thread, connected before the body runs; stopped after it."""
    stop = threading.Event()
    thread = threading.Thread(target=ingester.run, args=(stop,), daemon=True)
    thread.start()
    try:
        eventually(lambda: ingester.stats.connections > 0 or not thread.is_alive(), 30, "the ingester to consume")
        assert thread.is_alive()
        yield ingester
    finally:
        stop.set()
        thread.join(30)
        ingester.close()
    assert not thread.is_alive()


def test_bad_messages_are_dead_lettered_with_their_body_and_the_good_ones_go_through(
    settings: Settings, broker: str, source: EventSourceConfig
) -> None:
    good, mixed = str(uuid.uuid4()), str(uuid.uuid4())
    bad = [
        ("task.sent", b"{not json", JSON),
        ("task.sent", b"[1, 2]", JSON),
        ("task.sent", b'{"hello": "world"}', JSON),
        ("task.succeeded", b'{"type": "task-succeeded", "timestamp": 1}', JSON),
        ("task.sent", b"\x80\x04\x95pickled", "application/x-python-serialize"),
        message([sent(mixed), {"type": "task-started", "timestamp": 2}]),
    ]
    with running(build_ingester(settings, source, CeleryEventTranslator().translate)) as ingester:
        publish_raw(broker, [*bad, message(sent(good)),
                             message({"type": "task-succeeded", "uuid": good, "result": "42", "runtime": 0.1,
                                      "hostname": "w1@host", "pid": 9, "timestamp": time.time()})])  # fmt: skip
        eventually(lambda: appended_tasks(settings) == {good: 2, mixed: 1} and ingester.stats.dead_letters >= len(bad),
                   30, "the good events appended and the bad ones dead-lettered")  # fmt: skip
        stats = ingester.stats
    assert stats.dead_letters == len(bad)
    if source.broker == "rabbitmq":
        assert queue_depth(broker, source.queue) == 0  # dead letters acknowledged too

    with build_event_log(settings, topic=dead_letter_topic(settings.topic)) as dlq:
        letters = {letter.record.value: letter for letter in map(read_dead_letter, dlq.read())}  # by raw body
    assert sorted(letters) == sorted(body for _, body, _ in bad)
    assert {letter.topic for letter in letters.values()} == {"celeryev"}
    reasons = [letters[body].reason for _, body, _ in bad]
    assert reasons[0].startswith("not JSON: ")
    number = "not a Celery event: a JSON number, not an object with a 'type'"
    assert reasons[1] == f"event 1 of 2: {number}; event 2 of 2: {number}"
    assert reasons[2] == "not a Celery event: 'type' must be a non-empty string, got None"
    assert reasons[3].startswith("uuid: a task-succeeded event needs the task id")
    assert reasons[4].startswith("content type 'application/x-python-serialize': Celery's events are JSON")
    assert reasons[5].startswith("event 2 of 2: uuid: a task-started event needs the task id")

    project_all(settings)
    reader = build_view_reader(settings)
    try:
        done, half = reader.task_state(good), reader.task_state(mixed)
        assert done is not None and (done.status, done.result, done.worker) == (TaskStatus.DONE, 42, "w1@host")
        assert half is not None and half.status is TaskStatus.PENDING  # the good half of the mixed message
    finally:
        reader.close()


def test_while_the_log_refuses_appends_the_batch_is_held_and_nothing_more_is_read(
    settings: Settings, rabbitmq_url: str
) -> None:
    config = EventSourceConfig(rabbitmq_url, queue=unique_name("ledger.celeryev"), prefetch=20)
    log = BreakableLog(build_event_log(settings))
    dead = DeadLetterSink(build_event_log(settings, topic=dead_letter_topic(settings.topic)))
    ingester = Ingester(BrokerEvents(config), log, dead, CeleryEventTranslator().translate,
                        codec=build_codec(settings), batch_size=10, retry=FAST)  # fmt: skip
    ids = [str(uuid.uuid4()) for _ in range(100)]
    try:
        log.broken = True
        with running(ingester):
            publish_raw(rabbitmq_url, [message(sent(task_id)) for task_id in ids])
            eventually(lambda: ingester.stats.log_failures >= 3, 30, "the ingester to retry its append")
            assert queue_depth(rabbitmq_url, config.queue) >= len(ids) - config.prefetch  # not read on
            assert not set(ids) & set(appended_tasks(settings))
            log.broken = False
            eventually(lambda: queue_depth(rabbitmq_url, config.queue) == 0, 30, "the queue to be drained")
            eventually(lambda: set(ids) <= set(appended_tasks(settings)), 30, "the held batches to be appended")
        assert appended_tasks(settings) == dict.fromkeys(ids, 1)  # each once, none lost
    finally:
        delete_queues(rabbitmq_url, [config.queue])


def test_what_is_published_while_no_ingester_runs_waits_on_rabbitmq_and_is_gone_on_redis(
    settings: Settings, broker: str, source: EventSourceConfig
) -> None:
    before, during, after = (str(uuid.uuid4()) for _ in range(3))
    kept = source.broker == "rabbitmq"

    def ingest(task_id: str, *expected: str) -> None:
        with running(build_ingester(settings, source, CeleryEventTranslator().translate)):
            publish_raw(broker, [message(sent(task_id))])
            eventually(lambda: set(expected) <= set(appended_tasks(settings)), 30, "the events to be appended")

    ingest(before, before)
    publish_raw(broker, [message(sent(during))])  # no ingester runs
    ingest(after, after, *([during] if kept else []))
    mine = {task_id: n for task_id, n in appended_tasks(settings).items() if task_id in (before, during, after)}
    assert mine == (dict.fromkeys([before, during, after], 1) if kept else dict.fromkeys([before, after], 1))


def test_two_ingesters_on_one_rabbitmq_queue_are_one_reader_and_a_standby_that_takes_over(
    settings: Settings, rabbitmq_url: str
) -> None:
    """A retried task's ``task-started`` carries no ``retries``: only the reader that saw its
    ``task-received`` knows its attempt. Two readers sharing the queue would each see half."""
    config = EventSourceConfig(rabbitmq_url, queue=unique_name("ledger.celeryev"), prefetch=4)
    first, second = [str(uuid.uuid4()) for _ in range(40)], [str(uuid.uuid4()) for _ in range(40)]

    def second_attempt(task_id: str) -> list[tuple[str, bytes, str]]:
        return [message({**sent(task_id), "type": "task-received", "retries": 1, "hostname": "w1@host"}),
                message({"type": "task-started", "uuid": task_id, "hostname": "w1@host", "pid": 9,
                         "timestamp": time.time()})]  # fmt: skip

    def attempts(task_ids: list[str]) -> Counter[int]:
        with build_event_log(settings) as log:
            events = [decode(record) for record in log.read()]
        return Counter(e.attempt for e in events if isinstance(e, TaskEvent) and e.task_id in task_ids)

    one, other = (build_ingester(settings, config, CeleryEventTranslator().translate, batch_size=2) for _ in "12")
    try:
        with ExitStack() as both:
            active = both.enter_context(ExitStack())
            active.enter_context(running(one))  # consuming first: the queue's active consumer
            both.enter_context(running(other))
            publish_raw(rabbitmq_url, [m for task_id in first for m in second_attempt(task_id)])
            eventually(lambda: sum(attempts(first).values()) == 2 * len(first), 30, "the first tasks appended")
            assert (one.stats.messages, other.stats.messages) == (2 * len(first), 0)  # the standby took none
            active.close()  # the active ingester goes: the standby takes over
            publish_raw(rabbitmq_url, [m for task_id in second for m in second_attempt(task_id)])
            eventually(lambda: sum(attempts(second).values()) == 2 * len(second), 30, "the standby to take over")
            assert other.stats.messages == 2 * len(second)
        assert attempts(first) == {1: 2 * len(first)}  # every task-started in the attempt its task-received said
        assert attempts(second) == {1: 2 * len(second)}
    finally:
        delete_queues(rabbitmq_url, [config.queue])
