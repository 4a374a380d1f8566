"""Smoke tests proving the harness is real: the drivers themselves, not our adapters, talk to
the Kafka broker and the PostgreSQL server that ``scripts/services up`` started.

Both fixtures fail (never skip) when a service is down, so a green run means both answered.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import psycopg2
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient

PARTITIONS = 4
KEYS = [f"task-{i}" for i in range(12)]
PER_KEY = 5


def _consume_all(bootstrap: str, topic: str, expected: int) -> list[Any]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        consumer.seek_to_beginning()
        got: list[Any] = []
        deadline = time.monotonic() + 20
        while len(got) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                got.extend(batch)
        return got
    finally:
        consumer.close()


def test_kafka_keeps_keyed_messages_together(kafka_bootstrap: str, kafka_topic: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="ledger-smoke")
    try:
        admin.create_topics({kafka_topic: {"num_partitions": PARTITIONS, "replication_factor": 1}})
        admin.wait_for_topics([kafka_topic])
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        try:
            for n in range(PER_KEY):
                for key in KEYS:
                    producer.send(kafka_topic, f"{key}:{n}".encode(), key.encode())
            producer.flush(timeout=20)
        finally:
            producer.close()

        messages = _consume_all(kafka_bootstrap, kafka_topic, len(KEYS) * PER_KEY)
        assert len(messages) == len(KEYS) * PER_KEY
        partitions, values = defaultdict(set), defaultdict(list)
        for message in sorted(messages, key=lambda m: (m.partition, m.offset)):
            partitions[message.key].add(message.partition)
            values[message.key].append(message.value)
        for key in KEYS:
            assert len(partitions[key.encode()]) == 1, f"{key} went to several partitions"
            assert values[key.encode()] == [f"{key}:{n}".encode() for n in range(PER_KEY)]
        assert len(set().union(*partitions.values())) > 1  # and the keys do spread out

        admin.delete_topics([kafka_topic])
        deadline = time.monotonic() + 20
        while kafka_topic in admin.list_topics() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert kafka_topic not in admin.list_topics()
    finally:
        admin.close()


def test_postgres_stores_and_returns_a_row(postgres_dsn: str, pg_schema: str) -> None:
    conn = psycopg2.connect(postgres_dsn, connect_timeout=5)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(f'CREATE SCHEMA "{pg_schema}"')
            cur.execute(f'CREATE TABLE "{pg_schema}".smoke (id int PRIMARY KEY, body text)')
            cur.execute(f'INSERT INTO "{pg_schema}".smoke VALUES (%s, %s)', (1, "täsk-ünïcode"))
        with conn, conn.cursor() as cur:
            cur.execute(f'SELECT id, body FROM "{pg_schema}".smoke')
            assert cur.fetchall() == [(1, "täsk-ünïcode")]
            cur.execute("SELECT current_setting('server_version_num')::int")
            assert (cur.fetchone() or (0,))[0] >= 120000
    finally:
        conn.close()
