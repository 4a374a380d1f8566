"""The EventLog contract on the real Kafka broker, plus what only Kafka can get wrong."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.partitioner import murmur2 as kafka_murmur2

from ledger.eventlog.base import AppendError, EventLog, EventLogUnavailable, LogRecord
from ledger.eventlog.kafka import KafkaEventLog
from ledger.eventlog.partitioning import murmur2
from ledger.settings import Settings
from tests.contract.eventlog_contract import PARTITIONS, POLL_MS, EventLogContract, records

MiB = 1 << 20
FAST: dict[str, Any] = {
    "poll_timeout_ms": POLL_MS,
    "request_timeout_ms": 10_000,
    "delivery_timeout_ms": 20_000,
    "linger_ms": 2,
}


class TestKafkaEventLog(EventLogContract):
    @pytest.fixture
    def backend(self, kafka_bootstrap: str, kafka_topic: str) -> None:
        self.bootstrap, self.topic = kafka_bootstrap, kafka_topic

    def make_log(self, partitions: int) -> EventLog:
        return KafkaEventLog(self.bootstrap, self.topic, partitions=partitions, **FAST)


@pytest.fixture
def kafka_log(kafka_bootstrap: str, kafka_topic: str) -> Iterator[KafkaEventLog]:
    log = KafkaEventLog(kafka_bootstrap, kafka_topic, partitions=PARTITIONS, **FAST)
    yield log
    log.close()


def _admin(bootstrap: str) -> Any:
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="ledger-tests")


def test_the_topic_is_created_with_the_configured_partitions(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    KafkaEventLog(kafka_bootstrap, kafka_topic, partitions=5, **FAST).close()
    admin = _admin(kafka_bootstrap)
    try:
        [described] = admin.describe_topics([kafka_topic])
    finally:
        admin.close()
    assert described["error_code"] == 0
    assert len(described["partitions"]) == 5
    # an existing topic keeps its partition count, and the log adopts it
    with KafkaEventLog(kafka_bootstrap, kafka_topic, partitions=2, **FAST) as again:
        assert again.partitions == 5


def test_concurrent_creators_share_one_topic(kafka_bootstrap: str, kafka_topic: str) -> None:
    name, made, errors = f"{kafka_topic}.race", [], []

    def create() -> None:
        try:
            made.append(KafkaEventLog(kafka_bootstrap, name, partitions=4, **FAST))
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for log in made:
        log.close()
    assert errors == []
    assert [log.partitions for log in made] == [4, 4, 4]


def test_an_unreachable_broker_raises_unavailable_naming_it() -> None:
    started = time.monotonic()
    with pytest.raises(EventLogUnavailable, match=r"Kafka at 127\.0\.0\.1:1 is not reachable"):
        KafkaEventLog("127.0.0.1:1", "nowhere", request_timeout_ms=1_000)
    assert time.monotonic() - started < 5


def test_a_record_the_broker_rejects_raises_append_error(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    # the producer lets 9 MiB through, the broker (message.max.bytes = 8 MiB) refuses it
    with KafkaEventLog(kafka_bootstrap, kafka_topic, max_request_size=16 * MiB, **FAST) as log:
        with pytest.raises(AppendError, match=rf"1 of 1 records .*{kafka_topic}.*TooLarge"):
            log.append([LogRecord("huge", os.urandom(9 * MiB))])
        assert len(log.append(records("after", 10))) == 10  # the producer recovers


def test_a_record_the_producer_rejects_raises_append_error(kafka_log: KafkaEventLog) -> None:
    batch = [LogRecord("huge", os.urandom(9 * MiB)), *records("unsent", 2)]
    with pytest.raises(AppendError, match=r"3 of 3 records .*TooLarge"):
        kafka_log.append(batch)


def test_append_to_a_deleted_topic_raises_append_error(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    short = {**FAST, "request_timeout_ms": 1_500, "delivery_timeout_ms": 3_000}
    log = KafkaEventLog(kafka_bootstrap, kafka_topic, **short)
    try:
        log.append(records("before", 3))
        log.delete_topic()
        started = time.monotonic()
        with pytest.raises(AppendError, match=kafka_topic):
            log.append(records("after", 3))
        assert time.monotonic() - started < 15
    finally:
        log.close()  # must not raise, though batches for the vanished topic never complete


def test_raw_records_carry_key_headers_and_value(
    kafka_log: KafkaEventLog, kafka_bootstrap: str
) -> None:
    headers = (("ce_type", b"x"), ("n", b""))
    [position] = kafka_log.append([LogRecord("task-ü", b"payload", headers)])
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None)
    try:
        tp = TopicPartition(kafka_log.topic, position.partition)
        consumer.assign([tp])
        consumer.seek(tp, position.offset)
        polled = consumer.poll(timeout_ms=10_000, max_records=1)
    finally:
        consumer.close()
    [raw] = polled[tp]
    assert (raw.key, raw.value) == ("task-ü".encode(), b"payload")
    assert [tuple(h) for h in raw.headers] == [("ce_type", b"x"), ("n", b"")]


def test_partition_for_matches_kafka_pythons_default_partitioner(
    kafka_log: KafkaEventLog, kafka_bootstrap: str
) -> None:
    keys = [f"task-{i}-ü" for i in range(40)]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    try:
        futures = [producer.send(kafka_log.topic, b"raw", key.encode()) for key in keys]
        producer.flush(10)
        placed = [future.get(10).partition for future in futures]
    finally:
        producer.close()
    assert placed == [kafka_log.partition_for(key) for key in keys]
    assert len(set(placed)) == PARTITIONS


def test_murmur2_is_kafkas() -> None:
    java = {b"21": -973932308, b"foobar": -790332482, b"abc": 479470107, b"": 275646681}
    for data, signed in java.items():
        assert murmur2(data) == signed & 0xFFFFFFFF
    rng = __import__("random").Random(7)
    for length in range(0, 70):
        data = bytes(rng.getrandbits(8) for _ in range(length))
        assert murmur2(data) == kafka_murmur2(data)


def test_a_second_topic_such_as_the_dead_letter_one(
    kafka_log: KafkaEventLog, kafka_bootstrap: str
) -> None:
    with KafkaEventLog(kafka_bootstrap, f"{kafka_log.topic}.dlq", partitions=1, **FAST) as dlq:
        assert dlq.append([LogRecord("bad", b"undecodable")])[0].partition == 0
        assert [r.value for r in dlq.read()] == [b"undecodable"]
    assert kafka_log.end_offsets() == dict.fromkeys(range(PARTITIONS), 0)


def test_from_settings(kafka_bootstrap: str, kafka_topic: str) -> None:
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap, topic=kafka_topic, partitions=2,
        compression="gzip", consumer_poll_timeout_ms=POLL_MS,
    )  # fmt: skip
    with KafkaEventLog.from_settings(settings) as log:
        assert (log.topic, log.partitions) == (kafka_topic, 2)
        log.append(records("gz", 5))
        assert len(list(log.read())) == 5
