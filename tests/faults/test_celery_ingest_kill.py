"""``ledger ingest celery`` on RabbitMQ killed with SIGKILL mid-stream, four times (at a
random moment; with a batch taken from the queue but not yet in the log; with a batch in
the log but not yet acknowledged; at a random moment again), while a REAL prefork worker
(``-E``) keeps running tasks, and restarted each time: its durable queue keeps what is
published while it is down, a batch appended but not acknowledged is delivered again and
held once, so every task's history holds each of its transitions exactly once (compared
with what Celery's result backend says happened to it)."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from celery.result import AsyncResult

from ledger.bootstrap import build_event_log, build_view_reader, build_view_writer
from ledger.domain.statuses import TaskStatus
from ledger.projections.store import ViewReader
from ledger.settings import Settings
from tests.celery_helpers import IngesterProcess, celery_fleet, delete_queues, eventually, queue_depth
from tests.faults.conftest import ReliabilityRow
from tests.faults.processes import environment, history_ids
from tests.helpers import unique_name
from tests.streams import project_all

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.postgres]

TASKS = 240
KILL_AROUND_APPEND = """
import os, signal, sys, threading
from ledger.bootstrap import build_codec, build_event_log
from ledger.consumers.celery_broker import BrokerEvents, EventSourceConfig
from ledger.consumers.celery_ingest import Ingester
from ledger.consumers.deadletter import DeadLetterSink, dead_letter_topic
from ledger.contrib.celery_events import CeleryEventTranslator
from ledger.settings import load_settings

class Crashing(Ingester):
    def _store(self, batch):
        crash = self.stats.batches + 1 == int(sys.argv[3])
        if crash and sys.argv[4] == "before":
            os.kill(os.getpid(), signal.SIGKILL)  # taken from the broker, not in the log yet
        super()._store(batch)
        if crash:
            os.kill(os.getpid(), signal.SIGKILL)  # in the log; the broker was not told

settings = load_settings()
log = build_event_log(settings)
dead = DeadLetterSink(build_event_log(settings, topic=dead_letter_topic(log.topic)))
source = BrokerEvents(EventSourceConfig(sys.argv[1], queue=sys.argv[2], prefetch=50))
Crashing(source, log, dead, CeleryEventTranslator().translate, codec=build_codec(settings),
                        batch_size=25).run(threading.Event())
"""
EXPECTED = {
    "SUCCESS": ["task.pending", "task.received", "task.started", "task.succeeded"],
    "FAILURE": ["task.pending", "task.received", "task.started", "task.failed"],
}


def appended(settings: Settings) -> int:
    with build_event_log(settings) as log:
        return sum(log.end_offsets().values())


def await_finished(settings: Settings, reader: ViewReader, results: list[AsyncResult]) -> None:
    """Project until every task is finished (done or failed) in the views, or fail after 2 min."""
    ids = [r.id for r in results]

    def finished() -> bool:
        project_all(settings)
        return all((row := reader.task_state(i)) is not None and row.status in
                   (TaskStatus.DONE, TaskStatus.FAILURE) for i in ids)  # fmt: skip

    eventually(finished, 120, "every task to be finished in the views")


def lost_and_doubled(reader: ViewReader, results: list[AsyncResult]) -> tuple[int, int]:
    """Each task's history against the transitions its outcome (Celery's result backend)
    must have, asserted task by task; the report's counts of transitions lost and doubled."""
    lost = doubled = 0
    for result in results:
        history = Counter(row.type for row in reader.task_events(result.id))
        expected = Counter(EXPECTED[result.state])
        lost += sum((expected - history).values())
        doubled += sum((history - expected).values())
        assert history == expected, (result.id, result.state, history)
    return lost, doubled


def test_sigkill_mid_stream_on_rabbitmq_loses_nothing_and_doubles_nothing(
    kafka_settings: Settings, rabbitmq_url: str, report: list[ReliabilityRow]
) -> None:
    settings, queue = kafka_settings, unique_name("ledger.celeryev")
    build_view_writer(settings).migrate()
    env, rng = environment(settings), random.Random(16)
    results: list[AsyncResult] = []
    with celery_fleet(rabbitmq_url) as fleet:
        sent = threading.Event()

        def send() -> None:  # tasks keep coming while the ingester is killed and restarted
            for i in range(TASKS):
                results.append(fleet.send("plain.add", i, 1) if i % 4 else fleet.send("plain.fail", f"sku {i}"))
                time.sleep(0.02)
            sent.set()

        ingester = IngesterProcess(env, "--broker", rabbitmq_url, "--queue", queue, "--batch", "25")
        ingester.consuming()
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        waited = []
        try:
            for kill in ("at random", "before", "after", "at random"):
                floor = appended(settings) + rng.randint(20, 80)
                eventually(lambda f=floor: appended(settings) >= f, 60, "the ingester to append more")  # type: ignore[misc]
                if kill == "at random":
                    ingester.kill()
                else:
                    ingester.stop()
                    crash = subprocess.run([sys.executable, "-c", KILL_AROUND_APPEND, rabbitmq_url, queue, "3", kill],
                                           env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
                    assert crash.returncode == -9, crash.stderr
                eventually(lambda: queue_depth(rabbitmq_url, queue) > 0, 60, "events to wait in the queue")
                waited.append(queue_depth(rabbitmq_url, queue))
                ingester = IngesterProcess(env, "--broker", rabbitmq_url, "--queue", queue, "--batch", "25")
                ingester.consuming()
            sender.join(120)
            assert sent.is_set()
            for result in results:
                result.get(timeout=60, propagate=False)
            reader = build_view_reader(settings)
            await_finished(settings, reader, results)
        finally:
            assert ingester.stop() == 0, ingester.output
            delete_queues(rabbitmq_url, [queue])

        try:
            lost, doubled = lost_and_doubled(reader, results)
        finally:
            reader.close()
    ids_in_history = history_ids(settings)
    assert len(ids_in_history) == len(set(ids_in_history))
    assert all(waited), waited  # each time, events were published while no ingester ran
    events = sum(len(EXPECTED[r.state]) for r in results)
    report.append(ReliabilityRow("celery ingest sigkill (rabbitmq)", "4 SIGKILLs of the ingester (around an append, "
                                 "at random)", events, lost, doubled))  # fmt: skip


def test_two_ingesters_on_redis_one_killed_mid_stream_lose_nothing_and_double_nothing(
    kafka_settings: Settings, redis_url: str, report: list[ReliabilityRow]
) -> None:
    """On Redis nothing waits for an absent ingester: a second one, side by side, hears the
    same events (the same ids: each transition held once) and covers the other's death."""
    settings, env = kafka_settings, environment(kafka_settings)
    build_view_writer(settings).migrate()
    results: list[AsyncResult] = []
    with celery_fleet(redis_url) as fleet:
        ingesters = [IngesterProcess(env, "--broker", redis_url, "--queue", unique_name("ledger.celeryev"))
                     for _ in range(2)]  # fmt: skip
        for ingester in ingesters:
            ingester.consuming()
        try:
            for i in range(TASKS // 2):
                results.append(fleet.send("plain.add", i, 1) if i % 4 else fleet.send("plain.fail", f"sku {i}"))
                if i == TASKS // 4:
                    ingesters[0].kill()
                time.sleep(0.02)
            for result in results:
                result.get(timeout=60, propagate=False)
            reader = build_view_reader(settings)
            await_finished(settings, reader, results)
        finally:
            assert ingesters[1].stop() == 0, ingesters[1].output
        try:
            lost, doubled = lost_and_doubled(reader, results)
        finally:
            reader.close()
    events = sum(len(EXPECTED[r.state]) for r in results)
    report.append(ReliabilityRow("celery ingest 2 ingesters (redis)", "one of two ingesters SIGKILLed mid-stream",
                                 events, lost, doubled))  # fmt: skip
