"""The real servers fail under a running ledger: the Kafka broker is SIGKILLed and started
again while the SDK emits; PostgreSQL is restarted and the projector's backend is
terminated mid-stream. Nothing acknowledged is lost, nothing is doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from importlib.util import find_spec
from pathlib import Path

import psycopg2
import pytest

from ledger.bootstrap import build_event_log, build_ledger, build_view_writer
from ledger.domain.events import AnyEvent
from ledger.eventlog.base import AppendError
from ledger.sdk import Ledger
from ledger.settings import KafkaClient, Settings
from ledger.simulate import simulate
from ledger.subscribe import subscribe
from ledger.wire import decode
from tests.faults.conftest import ReliabilityRow
from tests.faults.processes import ROOT, assert_equal_to_a_clean_rebuild, catch_up, history_ids, kill, start
from tests.helpers import unique_name

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.postgres]
SERVICES = ROOT / "scripts" / "services"
SERVICES_DIR = Path(os.environ.get("LEDGER_SERVICES_DIR", "/var/tmp/task-ledger-services"))


def confluent_installed() -> bool:
    return find_spec("confluent_kafka") is not None


def services(*args: str) -> None:
    subprocess.run([str(SERVICES), *args], check=True, capture_output=True, timeout=180)


def emit_through(ledger: Ledger, events: list[AnyEvent], acknowledged: list[str], failed: list[str],
                 durations: list[float]) -> None:  # fmt: skip
    """A worker emitting one event at a time; the user's code path must keep going."""
    for event in events:
        started = time.monotonic()
        try:
            ledger.emit(event)
            acknowledged.append(str(event.event_id))
        except AppendError:
            failed.append(str(event.event_id))
        durations.append(time.monotonic() - started)
        time.sleep(0.002)


class ClientStack:
    """One Kafka client's whole ledger through the outage, on its own topic and views: the
    SDK emitting, a projector process, a subscriber in its group."""

    def __init__(self, settings: Settings, client: KafkaClient, events: list[AnyEvent]) -> None:
        self.client, self.events = client, events
        self.settings = settings if client is KafkaClient.KAFKA_PYTHON else settings.model_copy(update={
            "topic": f"{settings.topic}.{client}", "postgres_schema": f"{settings.postgres_schema}_{client}",
            "projector_group": f"{settings.projector_group}-{client}"})  # fmt: skip
        self.settings = self.settings.model_copy(update={"delivery_timeout_ms": 15_000, "request_timeout_ms": 5_000,
                                                         "kafka_client": client})  # fmt: skip
        build_view_writer(self.settings).migrate()
        self.ledger = build_ledger(self.settings)
        self.ledger.emit_many(events[:500])
        self.acknowledged = [str(e.event_id) for e in events[:500]]
        self.failed: list[str] = []
        self.durations: list[float] = []
        self.projector = start(self.settings, "project")
        self.received: list[AnyEvent] = []
        self.follower = subscribe(unique_name("survivor"), settings=self.settings, start="beginning")
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.following = threading.Thread(target=self._follow)
        self.following.start()
        self.emitter = threading.Thread(target=emit_through, args=(self.ledger, events[500:], self.acknowledged,
                                                                   self.failed, self.durations))  # fmt: skip

    def _follow(self) -> None:
        try:
            self.follower.run(self.received.append, stop=self.stop)
        except BaseException as exc:  # surfaced by check
            self.errors.append(exc)

    def positioned(self) -> bool:
        """A member of its group, positioned, before the outage hits."""
        assert not self.errors, self.errors
        return bool(self.follower._seen)

    def finish(self) -> list[str]:
        """Emits done, the projector caught up, the subscriber given the time to rejoin: the
        ids in the topic."""
        self.emitter.join(180)
        self.ledger.close()
        catch_up(self.settings)
        topic_ids = [str(decode(r).event_id) for r in build_event_log(self.settings).read("beginning")]
        deadline = time.monotonic() + 90  # the subscriber rejoins its group after the outage
        while ({str(e.event_id) for e in self.received} != set(topic_ids) and time.monotonic() < deadline
               and not self.errors):  # fmt: skip
            time.sleep(0.5)
        self.stop.set()
        self.following.join(60)
        kill(self.projector)
        return topic_ids

    def check(self, topic_ids: list[str], report: list[ReliabilityRow]) -> None:
        assert not self.errors, self.errors
        lost = len(set(self.acknowledged) - set(topic_ids))
        doubled = len(topic_ids) - len(set(topic_ids))
        report.append(ReliabilityRow(f"Kafka SIGKILL, {self.client}",
                                     f"kill -9 Kafka mid-stream, {len(self.failed)} emits raised", len(self.events),
                                     lost, doubled))  # fmt: skip
        assert lost == 0 and doubled == 0  # every acknowledged emit exactly once
        assert set(self.failed) | set(self.acknowledged) == {str(e.event_id) for e in self.events}  # none vanished
        assert max(self.durations) < 15 + 5  # an emit that failed, failed within the delivery timeout
        assert sorted(history_ids(self.settings)) == sorted(set(topic_ids))  # the projector survived, exactly once
        assert {str(e.event_id) for e in self.received} == set(topic_ids)  # the subscriber survived: no gap
        assert_equal_to_a_clean_rebuild(self.settings)


def test_broker_sigkill_and_restart_while_producing(kafka_settings: Settings, report: list[ReliabilityRow]) -> None:
    """Each Kafka client at once, each on its own topic and views: its group member, its
    producer and its log's offset queries meet a broker that comes back with new leader
    epochs and a coordinator still loading."""
    clients = [c for c in KafkaClient if c is not KafkaClient.CONFLUENT or confluent_installed()]
    events = simulate(800, seed=9, periodic=0)
    stacks = [ClientStack(kafka_settings, client, events) for client in clients]
    deadline = time.monotonic() + 90
    while not all(stack.positioned() for stack in stacks):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    for stack in stacks:
        stack.emitter.start()
    time.sleep(1.0)
    pid = int((SERVICES_DIR / "kafka" / "kafka.pid").read_text())
    os.kill(pid, signal.SIGKILL)  # the broker dies mid-stream
    time.sleep(3)
    services("up", "kafka")  # and comes back with its log
    in_topics = [stack.finish() for stack in stacks]
    for stack, topic_ids in zip(stacks, in_topics, strict=True):
        stack.check(topic_ids, report)


def terminate_projector_backends(settings: Settings) -> int:
    conn = psycopg2.connect(settings.postgres_dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'task-ledger'"
        )
        (count,) = cur.fetchone() or (0,)
    conn.close()
    return int(count)


def test_postgres_restart_and_killed_backends_mid_stream(
    kafka_settings: Settings, report: list[ReliabilityRow]
) -> None:
    settings = kafka_settings.model_copy(update={"projector_batch_size": 300})
    build_view_writer(settings).migrate()
    events = simulate(3000, seed=10, periodic=2)
    ledger = build_ledger(settings)
    ledger.emit_many(events[:4000])
    projector = start(settings, "project", LEDGER_LOG_LEVEL="WARNING")
    time.sleep(1.5)
    terminated = 0
    for _ in range(5):  # kill its connection again and again, mid-batch or between batches
        terminated += terminate_projector_backends(settings)
        time.sleep(0.2)
    ledger.emit_many(events[4000:8000])
    services("down", "postgres")  # a restart of the database under the running projector
    time.sleep(2)
    services("up", "postgres")
    ledger.emit_many(events[8000:])
    ledger.close()
    time.sleep(2)
    assert projector.poll() is None, projector.stderr.read() if projector.stderr else ""  # it waited, not died
    catch_up(settings)
    projector.send_signal(signal.SIGTERM)
    assert projector.wait(timeout=30) == 0
    assert projector.stderr is not None
    assert "backend failed, retrying" in projector.stderr.read()
    ids = history_ids(settings)
    unique = {str(e.event_id) for e in events}
    report.append(ReliabilityRow("PostgreSQL restart + terminate", f"restart, {terminated} backends terminated",
                                 len(events), len(unique - set(ids)), len(ids) - len(set(ids))))  # fmt: skip
    assert sorted(ids) == sorted(unique)
    assert_equal_to_a_clean_rebuild(settings)
