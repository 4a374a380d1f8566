"""Kafka stopped for 20 s under ``ledger ingest celery`` on RabbitMQ, while a REAL prefork
worker (``-E``) of an app with no ledger code keeps running tasks: the ingester holds its
batch unacknowledged and reads nothing more (the events wait in its durable queue), then
resumes when Kafka is back, never having exited; afterwards every task's history holds each
of its transitions exactly once (compared with what Celery's result backend reports)."""

from __future__ import annotations

import threading
import time

import pytest
from celery.result import AsyncResult

from ledger.bootstrap import build_view_reader, build_view_writer
from ledger.settings import Settings
from tests.celery_helpers import IngesterProcess, celery_fleet, delete_queues, eventually, queue_depth
from tests.faults.conftest import ReliabilityRow
from tests.faults.processes import environment, history_ids
from tests.faults.test_celery_ingest_kill import EXPECTED, appended, await_finished, lost_and_doubled
from tests.faults.test_server_restarts import services
from tests.helpers import unique_name

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.postgres]

OUTAGE_S = 20


def test_kafka_stopped_20s_under_the_ingester_on_rabbitmq_loses_nothing_and_doubles_nothing(
    kafka_settings: Settings, rabbitmq_url: str, report: list[ReliabilityRow]
) -> None:
    # appends give up within a few seconds, so the outage is seen as failed appends, held
    # and retried (not one long wait that happens to outlast it)
    settings = kafka_settings.model_copy(update={"delivery_timeout_ms": 6_000, "request_timeout_ms": 3_000})
    build_view_writer(settings).migrate()
    queue, env = unique_name("ledger.celeryev"), environment(settings)
    results: list[AsyncResult] = []
    with celery_fleet(rabbitmq_url) as fleet:
        stop_sending = threading.Event()

        def send() -> None:  # tasks keep coming before, during and after the outage
            i = 0
            while not stop_sending.is_set():
                results.append(fleet.send("plain.add", i, 1) if i % 4 else fleet.send("plain.fail", f"sku {i}"))
                i += 1
                time.sleep(0.05)

        ingester = IngesterProcess(env, "--broker", rabbitmq_url, "--queue", queue, "--batch", "50")
        sender = threading.Thread(target=send, daemon=True)
        try:
            ingester.consuming()
            sender.start()
            eventually(lambda: appended(settings) >= 100, 60, "the ingester to append")
            services("down", "kafka")
            try:
                sent_at_stop = len(results)
                time.sleep(OUTAGE_S)  # the worker runs tasks; their events wait on RabbitMQ
                ran_while_away = len(results) - sent_at_stop
                waiting = queue_depth(rabbitmq_url, queue)
                assert ingester.process.poll() is None, ingester.output  # paused, not dead
            finally:
                services("up", "kafka")
            time.sleep(3)  # and a few more tasks once it is back
            stop_sending.set()
            sender.join(30)
            for result in results:
                result.get(timeout=60, propagate=False)
            reader = build_view_reader(settings)
            await_finished(settings, reader, results)
        finally:
            stop_sending.set()
            code = ingester.stop()
            delete_queues(rabbitmq_url, [queue])
        assert code == 0, ingester.output
        assert "event log away, holding the batch and retrying" in ingester.output  # it paused

        try:
            lost, doubled = lost_and_doubled(reader, results)
        finally:
            reader.close()
    ids_in_history = history_ids(settings)
    assert len(ids_in_history) == len(set(ids_in_history))
    assert ran_while_away > 0 and waiting > 0, (ran_while_away, waiting)  # tasks ran, events waited
    events = sum(len(EXPECTED[r.state]) for r in results)
    report.append(ReliabilityRow("celery ingest no Kafka (rabbitmq)", f"Kafka stopped {OUTAGE_S} s; "
                                 f"{ran_while_away} tasks sent meanwhile", events, lost, doubled))  # fmt: skip
