"""Fixtures for the real services: Kafka, PostgreSQL, Redis and RabbitMQ started by
``scripts/services up``.

Tests that need a service fail (never skip) when it is down: a green run must mean the
real broker and database were exercised.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.helpers import unique_name

KAFKA = os.environ.get("LEDGER_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
POSTGRES = os.environ.get("LEDGER_POSTGRES_DSN", "postgresql://ledger:ledger@127.0.0.1:5432/ledger")


def _reachable(host_port: str) -> bool:
    host, _, port = host_port.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    if not _reachable(KAFKA):
        pytest.fail(f"Kafka is not reachable at {KAFKA}: run scripts/services up")
    return KAFKA


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    import psycopg2

    try:
        psycopg2.connect(POSTGRES, connect_timeout=3).close()
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES}: {exc}; run scripts/services up")
    return POSTGRES


@pytest.fixture
def kafka_topic(kafka_bootstrap: str) -> Iterator[str]:
    """A fresh topic name; the topic (and its dead-letter topic) is deleted afterwards."""
    from kafka.admin import KafkaAdminClient

    name = unique_name("t")
    yield name
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="ledger-tests")
    try:
        existing = set(admin.list_topics())
        doomed = [t for t in existing if t == name or t.startswith(name + ".")]
        if doomed:
            admin.delete_topics(doomed)
    finally:
        admin.close()


@pytest.fixture
def pg_schema(postgres_dsn: str) -> Iterator[str]:
    """A fresh PostgreSQL schema name; dropped (cascade) afterwards."""
    import psycopg2

    name = unique_name("s")
    yield name
    conn = psycopg2.connect(postgres_dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
            cur.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (name + "%",))
            for (other,) in cur.fetchall():
                cur.execute(f'DROP SCHEMA IF EXISTS "{other}" CASCADE')
    finally:
        conn.close()


def _broker_url(variable: str) -> str:
    url = os.environ.get(variable)
    if not url:
        pytest.fail(f"{variable} is not set: run the tests through scripts/dev test, or export what "
                    "`scripts/services env` prints")  # fmt: skip
    where = urlsplit(url)
    if not _reachable(f"{where.hostname}:{where.port}"):
        pytest.fail(f"{variable}: nothing answers at {where.hostname}:{where.port}: run scripts/services up")
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis broker of the Celery tests (``LEDGER_REDIS_URL``)."""
    return _broker_url("LEDGER_REDIS_URL")


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """The RabbitMQ broker of the Celery tests (``LEDGER_RABBITMQ_URL``)."""
    return _broker_url("LEDGER_RABBITMQ_URL")
