"""The EventLog contract on the real Kafka broker through confluent-kafka (librdkafka), plus
what only this client can get wrong: the partition a key goes to (it must be kafka-python's,
not librdkafka's default), big records, librdkafka's errors mapped to the port's."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient

from ledger.bootstrap import build_event_log
from ledger.eventlog.base import AppendError, EventLog, EventLogUnavailable, LogRecord
from ledger.eventlog.confluent import ConfluentEventLog
from ledger.eventlog.kafka import KafkaEventLog
from ledger.settings import Settings
from tests.contract.eventlog_contract import PARTITIONS, POLL_MS, EventLogContract, records

MiB = 1 << 20
FAST: dict[str, Any] = {
    "poll_timeout_ms": POLL_MS,
    "request_timeout_ms": 10_000,
    "delivery_timeout_ms": 20_000,
    "linger_ms": 2,
}


class TestConfluentEventLog(EventLogContract):
    @pytest.fixture
    def backend(self, kafka_bootstrap: str, kafka_topic: str) -> None:
        self.bootstrap, self.topic = kafka_bootstrap, kafka_topic

    def make_log(self, partitions: int) -> EventLog:
        return ConfluentEventLog(self.bootstrap, self.topic, partitions=partitions, **FAST)


@pytest.fixture
def confluent_log(kafka_bootstrap: str, kafka_topic: str) -> Iterator[ConfluentEventLog]:
    log = ConfluentEventLog(kafka_bootstrap, kafka_topic, partitions=PARTITIONS, **FAST)
    yield log
    log.close()


def _partitions_of(bootstrap: str, topic: str) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return len(admin.describe_topics(TopicCollection([topic]))[topic].result(timeout=10).partitions)


def test_the_topic_is_created_with_the_configured_partitions(kafka_bootstrap: str, kafka_topic: str) -> None:
    ConfluentEventLog(kafka_bootstrap, kafka_topic, partitions=5, **FAST).close()
    assert _partitions_of(kafka_bootstrap, kafka_topic) == 5
    # an existing topic keeps its partition count, and the log adopts it
    with ConfluentEventLog(kafka_bootstrap, kafka_topic, partitions=2, **FAST) as again:
        assert again.partitions == 5


def test_concurrent_creators_share_one_topic(kafka_bootstrap: str, kafka_topic: str) -> None:
    name, made, errors = f"{kafka_topic}.race", [], []

    def create() -> None:
        try:
            made.append(ConfluentEventLog(kafka_bootstrap, name, partitions=4, **FAST))
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


def test_both_clients_put_a_key_in_the_same_partition(confluent_log: ConfluentEventLog, kafka_bootstrap: str) -> None:
    keys = [f"task-{i}-ü" for i in range(60)]
    batch = [LogRecord(key, b"confluent") for key in keys]
    by_confluent = confluent_log.append(batch)
    with KafkaEventLog(kafka_bootstrap, confluent_log.topic, partitions=PARTITIONS, **FAST) as reference:
        by_kafka_python = reference.append([LogRecord(key, b"kafka-python") for key in keys])
        # read back through the other client: where each record really is
        found = {(r.key, r.value): r.partition for r in reference.read()}
    assert [p.partition for p in by_confluent] == [p.partition for p in by_kafka_python]
    assert [found[key.encode(), b"confluent"] for key in keys] == [p.partition for p in by_kafka_python]
    assert len({p.partition for p in by_confluent}) == PARTITIONS


def test_partition_for_matches_librdkafkas_java_compatible_partitioner(
    confluent_log: ConfluentEventLog, kafka_bootstrap: str
) -> None:
    """librdkafka's own default (consistent_random, CRC32) differs; murmur2_random is the
    Java client's: the adapter must agree with that one."""
    keys = [f"task-{i}-ü" for i in range(40)]
    placed: dict[str, int] = {}
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "partitioner": "murmur2_random"})
    for key in keys:
        producer.produce(confluent_log.topic, b"raw", key.encode(),
                         on_delivery=lambda err, msg, key=key: placed.update({key: msg.partition()}))  # fmt: skip
    assert producer.flush(10) == 0
    assert [placed[key] for key in keys] == [confluent_log.partition_for(key) for key in keys]


def test_a_big_record_is_stored_whole(confluent_log: ConfluentEventLog) -> None:
    """librdkafka's own limit (message.max.bytes) is 1 MB by default: the adapter raises it
    to the broker's 8 MiB, so a 6 MiB record (a payload moved out is smaller) is kept."""
    value = os.urandom(6 * MiB)
    [position] = confluent_log.append([LogRecord("big", value)])
    [stored] = list(confluent_log.read())
    assert (stored.position, stored.value) == (position, value)


def test_a_record_the_broker_rejects_raises_append_error(kafka_bootstrap: str, kafka_topic: str) -> None:
    # the producer lets 9 MiB through, the broker (message.max.bytes = 8 MiB) refuses it
    with ConfluentEventLog(kafka_bootstrap, kafka_topic, max_request_size=16 * MiB, **FAST) as log:
        with pytest.raises(AppendError, match=rf"1 of 1 records .*{kafka_topic}.*MSG_SIZE_TOO_LARGE"):
            log.append([LogRecord("huge", os.urandom(9 * MiB))])
        assert len(log.append(records("after", 10))) == 10  # the producer recovers


def test_a_record_the_producer_rejects_raises_append_error(confluent_log: ConfluentEventLog) -> None:
    batch = [LogRecord("huge", os.urandom(9 * MiB)), *records("unsent", 2)]
    with pytest.raises(AppendError, match=r"3 of 3 records .*MSG_SIZE_TOO_LARGE"):
        confluent_log.append(batch)
    assert len(confluent_log.append(records("after", 10))) == 10


def test_append_to_a_deleted_topic_raises_append_error(kafka_bootstrap: str, kafka_topic: str) -> None:
    short = {**FAST, "request_timeout_ms": 1_500, "delivery_timeout_ms": 3_000}
    log = ConfluentEventLog(kafka_bootstrap, kafka_topic, **short)
    try:
        log.append(records("before", 3))
        log.delete_topic()
        with pytest.raises(AppendError, match=kafka_topic):
            log.append(records("after", 3))
    finally:
        log.close()  # must not raise, though the records for the vanished topic never land


def test_an_unreachable_broker_raises_unavailable_naming_it() -> None:
    started = time.monotonic()
    with pytest.raises(EventLogUnavailable, match=r"Kafka at 127\.0\.0\.1:1 is not reachable") as info:
        ConfluentEventLog("127.0.0.1:1", "nowhere", request_timeout_ms=1_000)
    assert time.monotonic() - started < 5
    assert "\n" not in str(info.value)


def test_raw_records_carry_key_headers_and_value(confluent_log: ConfluentEventLog, kafka_bootstrap: str) -> None:
    headers = (("ce_type", b"x"), ("n", b""))
    [position] = confluent_log.append([LogRecord("task-ü", b"payload", headers)])
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "ledger-tests", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(confluent_log.topic, position.partition, position.offset)])
        [raw] = consumer.consume(1, 10)
    finally:
        consumer.close()
    assert (raw.error(), raw.key(), raw.value()) == (None, "task-ü".encode(), b"payload")
    assert raw.headers() == [("ce_type", b"x"), ("n", b"")]


def test_what_kafka_python_wrote_reads_back_the_same(confluent_log: ConfluentEventLog, kafka_bootstrap: str) -> None:
    batch = [LogRecord("täsk", b"v", (("trace", b"\x00\xff"),)), *records("k", 20)]
    with KafkaEventLog(kafka_bootstrap, confluent_log.topic, **FAST) as reference:
        reference.append(batch)
        expected = sorted(reference.read(), key=lambda r: (r.partition, r.offset))
    found = sorted(confluent_log.read(), key=lambda r: (r.partition, r.offset))
    assert [(r.position, r.key, r.value, r.headers, r.timestamp_ms) for r in found] == [
        (r.position, r.key, r.value, r.headers, r.timestamp_ms) for r in expected
    ]


def test_the_setting_chooses_the_client(kafka_bootstrap: str, kafka_topic: str) -> None:
    base = {"log_backend": "kafka", "kafka_bootstrap_servers": kafka_bootstrap, "topic": kafka_topic, "partitions": 2}
    with build_event_log(Settings(**base, kafka_client="confluent")) as chosen:  # type: ignore[arg-type]
        assert isinstance(chosen, ConfluentEventLog)
        assert (chosen.topic, chosen.partitions) == (kafka_topic, 2)
        chosen.append(records("ck", 5))
    with build_event_log(Settings(**base)) as default:  # type: ignore[arg-type]
        assert isinstance(default, KafkaEventLog)
        assert sum(default.end_offsets().values()) == 5


def test_from_settings(kafka_bootstrap: str, kafka_topic: str) -> None:
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap, topic=kafka_topic, partitions=2,
        compression="gzip", consumer_poll_timeout_ms=POLL_MS,
    )  # fmt: skip
    with ConfluentEventLog.from_settings(settings) as log:
        assert (log.topic, log.partitions) == (kafka_topic, 2)
        log.append(records("gz", 5))
        assert len(list(log.read())) == 5
