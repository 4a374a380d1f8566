"""Fixtures for tests that run on both backends: ``settings`` is parametrized over the
embedded one (SQLite files) and the real Kafka broker + PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.bootstrap import build_event_log, build_view_reader, build_view_writer
from ledger.eventlog.base import EventLog
from ledger.projections.store import ViewReader, ViewWriter
from ledger.settings import Settings, load_settings


@pytest.fixture(params=["embedded", "kafka+postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "embedded":
        return load_settings(
            backend="embedded",
            data_dir=tmp_path,
            topic="events",
            partitions=4,
            consumer_poll_timeout_ms=50,
            projector_batch_wait_ms=20,
        )
    topic = request.getfixturevalue("kafka_topic")
    schema = request.getfixturevalue("pg_schema")
    return load_settings(
        backend="kafka+postgres",
        topic=topic,
        postgres_schema=schema,
        partitions=4,
        kafka_bootstrap_servers=request.getfixturevalue("kafka_bootstrap"),
        postgres_dsn=request.getfixturevalue("postgres_dsn"),
        consumer_poll_timeout_ms=200,
        projector_batch_wait_ms=50,
        projector_group=f"g-{topic}",
    )


@pytest.fixture
def log(settings: Settings) -> Iterator[EventLog]:
    event_log = build_event_log(settings)
    yield event_log
    event_log.close()


@pytest.fixture
def store(settings: Settings) -> Iterator[ViewWriter]:
    """The views' writer, migrated."""
    writer = build_view_writer(settings)
    writer.migrate()
    yield writer
    writer.close()


@pytest.fixture
def reader(settings: Settings, store: ViewWriter) -> Iterator[ViewReader]:
    """A reader of the views ``store`` migrated."""
    views = build_view_reader(settings)
    yield views
    views.close()
