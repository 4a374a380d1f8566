"""The emit SDK against the real Kafka broker: a small fleet tracks 1,000 tasks; every
event lands in the topic exactly once, in per-task order; encrypted payloads are not
readable in the raw records."""

from __future__ import annotations

import threading
from collections import defaultdict

import pytest
from kafka import KafkaConsumer, TopicPartition

from ledger.codec import Codec, generate_cipher_key
from ledger.domain.events import TaskEvent
from ledger.eventlog.kafka import KafkaEventLog
from ledger.sdk import Ledger, Retry
from ledger.wire import decode

pytestmark = pytest.mark.kafka


def raw_records(bootstrap: str, topic: str, partitions: int) -> list:  # type: ignore[type-arg]
    """Every record of the topic read with kafka-python directly, not through our adapter."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=3000)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    ends = consumer.end_offsets(tps)
    records = []
    while any(consumer.position(tp) < ends[tp] for tp in tps):
        for batch in consumer.poll(timeout_ms=1000).values():
            records += batch
    consumer.close()
    return records


def work(ledger: Ledger, worker: int, tasks: range) -> None:
    for i in tasks:
        task_id = f"task-{i}"
        ledger.pending(task_id, "app.job", args=[i], kwargs={"worker": worker})
        ledger.received(task_id, "app.job")
        attempts = 2 if i % 10 == 0 else 1  # every tenth task is retried once
        for attempt in range(attempts):
            try:
                with ledger.track(task_id, "app.job", attempt=attempt) as run:
                    if attempt + 1 < attempts:
                        raise Retry(countdown=0.0)
                    if i % 7 == 0:
                        raise ValueError(f"task {i} failed")
                    run.result = i * 2
            except (Retry, ValueError):
                pass


def test_a_thousand_tracked_tasks_land_exactly_once_in_per_task_order(kafka_bootstrap: str, kafka_topic: str) -> None:
    log = KafkaEventLog(kafka_bootstrap, kafka_topic, partitions=6, linger_ms=1)
    ledger = Ledger(log)
    threads = [threading.Thread(target=work, args=(ledger, w, range(w, 1000, 4))) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    ledger.close()
    assert ledger.emit_errors == 0
    records = raw_records(kafka_bootstrap, kafka_topic, 6)
    events = [decode(_stored(r)) for r in records]
    ids = [e.event_id for e in events]
    assert len(ids) == len(set(ids))  # exactly once
    per_task: dict[str, list[tuple[int, int, TaskEvent]]] = defaultdict(list)
    for record, event in zip(records, events, strict=True):
        assert isinstance(event, TaskEvent)
        per_task[event.task_id].append((record.partition, record.offset, event))
    assert len(per_task) == 1000
    for task_id, rows in per_task.items():
        i = int(task_id.split("-")[1])
        assert len({p for p, _, _ in rows}) == 1  # one task, one partition
        rows.sort(key=lambda row: row[1])
        types = [e.type for _, _, e in rows]
        outcome = "task.failed" if i % 7 == 0 else "task.succeeded"
        runs = ["task.started", "task.retried"] * (1 if i % 10 == 0 else 0) + ["task.started", outcome]
        assert types == ["task.pending", "task.received", *runs]  # in the order emitted


def _stored(raw):  # type: ignore[no-untyped-def]
    from ledger.eventlog.base import StoredRecord

    return StoredRecord(raw.topic, raw.partition, raw.offset, raw.key, raw.value, tuple(raw.headers or ()))


def test_with_the_cipher_on_args_and_results_are_not_in_the_raw_record(kafka_bootstrap: str, kafka_topic: str) -> None:
    codec = Codec.with_key(generate_cipher_key())
    ledger = Ledger(KafkaEventLog(kafka_bootstrap, kafka_topic, partitions=2), codec)
    ledger.pending("secret-task", "billing.charge", args=["4111-1111-1111-1111"], kwargs={"cvv": "123"})
    ledger.succeeded("secret-task", "billing.charge", result={"token": "tok_SECRET"})
    ledger.close()
    records = raw_records(kafka_bootstrap, kafka_topic, 2)
    assert len(records) == 2
    for raw in records:
        for secret in (b"4111-1111-1111-1111", b"cvv", b"tok_SECRET"):
            assert secret not in raw.value
    events = [decode(_stored(r), codec) for r in records]
    assert events[0].args == ["4111-1111-1111-1111"]  # type: ignore[union-attr]
    assert events[1].result == {"token": "tok_SECRET"}  # type: ignore[union-attr]
