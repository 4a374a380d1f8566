"""Poison input on the topic, offsets gone out of retention, and bad input at every
boundary: clear errors, dead letters with reasons, nothing lost, nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from uuid import uuid4

import pytest
from kafka import TopicPartition
from kafka.admin import KafkaAdminClient

from ledger.bootstrap import build_event_log, build_ledger, build_projector, build_view_reader, build_view_writer
from ledger.consumers.deadletter import dead_letter_topic, read_dead_letter
from ledger.consumers.projector import OffsetOutOfRetention
from ledger.domain.events import SCHEMA_VERSION, TaskStarted, TaskSucceeded
from ledger.eventlog.base import LogRecord
from ledger.sdk import InvalidEvent
from ledger.settings import Settings
from ledger.wire import encode
from tests.faults.conftest import ReliabilityRow
from tests.faults.processes import environment

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.postgres]


def poison() -> dict[str, LogRecord]:
    """Each way a record can be wrong, with a word its dead-letter reason must contain."""
    good = encode(TaskStarted(task_id="p-1", task_name="x"))
    body = json.loads(good.value)
    naive = {**body, "occurred_at": "2026-01-01T00:00:00"}
    return {
        "JSON": LogRecord("p-1", b"\x00\x01 not json"),
        "type": LogRecord("p-1", json.dumps({"hello": "world"}).encode()),
        "task.exploded": LogRecord("p-1", json.dumps({**body, "type": "task.exploded"}).encode()),
        "version": LogRecord("p-1", json.dumps({**body, "version": SCHEMA_VERSION + 1}).encode()),  # a future one
        "task_id": LogRecord("p-1", json.dumps({k: v for k, v in body.items() if k != "task_id"}).encode()),
        "timezone": LogRecord("p-1", json.dumps(naive).encode()),
        "large": LogRecord("p-1", json.dumps({**body, "args": ["x" * 5_000_000]}).encode()),
        "ce_type": LogRecord("p-1", good.value, ((*good.headers[:2], ("ce_type", b"io.taskledger.task.failed")))),
    }


def test_poison_records_go_to_the_dead_letter_topic_and_the_control_task_is_projected_once(
    kafka_settings: Settings, report: list[ReliabilityRow]
) -> None:
    log = build_event_log(kafka_settings)
    cases = poison()
    control = [TaskStarted(task_id="control", task_name="ok"), TaskSucceeded(task_id="control", result=1)]
    log.append([encode(control[0])])
    positions = log.append(list(cases.values()))
    log.append([encode(control[1])])
    projector = build_projector(kafka_settings)
    projector.run_until_caught_up()
    after = TaskSucceeded(task_id="after", result=2)
    log.append([encode(after)])  # the projector goes on after the poison
    projector.run_until_caught_up()
    projector.close()
    store, reader = build_view_writer(kafka_settings), build_view_reader(kafka_settings)
    dlq = build_event_log(kafka_settings, topic=dead_letter_topic(kafka_settings.topic))
    letters = {(d.partition, d.offset): d for d in map(read_dead_letter, dlq.read("beginning"))}
    for (word, _), position in zip(cases.items(), positions, strict=True):
        letter = letters[(position.partition, position.offset)]
        assert letter.topic == kafka_settings.topic
        assert word.lower() in letter.reason.lower(), (word, letter.reason)
    history = store.task_history(["control", "after"])
    assert [h.event_id for h in history if h.key == "control"] == [e.event_id for e in control]
    assert reader.task_state("control").status.value == "DONE"  # type: ignore[union-attr]
    assert reader.task_state("after") is not None
    report.append(ReliabilityRow("poison input", f"{len(cases)} kinds of bad record around a control task",
                                 len(cases) + 3, len(cases) - len(letters), len(history) - 3))  # fmt: skip


def test_a_stored_offset_older_than_the_log_stops_the_projector_with_a_clear_error(kafka_settings: Settings) -> None:
    settings = kafka_settings.model_copy(update={"partitions": 1})
    log = build_event_log(settings)
    log.append([encode(TaskStarted(task_id=f"r-{i}")) for i in range(10)])
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    admin.delete_records({TopicPartition(settings.topic, 0): 6})  # retention took offsets 0 to 5
    admin.close()
    projector = build_projector(settings)
    with pytest.raises(OffsetOutOfRetention, match=r"partition 0: next 0 < earliest 6"):
        projector.run_until_caught_up()
    projector.close()
    assert build_view_reader(settings).offsets("views", settings.topic) == {}  # nothing skipped, nothing written


def test_bad_sdk_input_is_refused_naming_the_field_and_nothing_is_written(kafka_settings: Settings) -> None:
    log = build_event_log(kafka_settings)
    ledger = build_ledger(kafka_settings, log)
    before = log.end_offsets()
    for call, field in (
        (lambda: ledger.pending("", "x"), "task_id"),
        (lambda: ledger.started("t", "x", attempt=-1), "attempt"),
        (lambda: ledger.pending("t", "x", eta=datetime(2026, 1, 1)), "eta"),  # naive
        (lambda: ledger.register_periodic("p", "x", interval_seconds=0), "interval_seconds"),
        (lambda: ledger.succeeded("t", 42), "task_name"),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidEvent, match=field):
            call()
    assert log.end_offsets() == before


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["tasks", "--limit", "0"], "--limit"),
        (["tasks", "--since", "soon"], "--since"),
        (["tasks", "--status", "EXPLODED"], "EXPLODED"),
        (["stats", "--as-of", "2026-01-01T00:00:00"], "timezone"),
        (["task", str(uuid4())], "unknown task"),
        (["dlq", "replay", "--offset", "3"], "go together"),
    ],
)
def test_bad_cli_input_is_one_line_and_no_traceback(kafka_settings: Settings, args: list[str], needle: str) -> None:
    build_view_writer(kafka_settings).migrate()
    done = subprocess.run([sys.executable, "-m", "ledger", *args], env=environment(kafka_settings),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode != 0
    assert needle in done.stderr and "Traceback" not in done.stderr
