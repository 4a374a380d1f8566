"""Each port's backend is chosen on its own: the projector runs on a Kafka log with SQLite
views (a dev setup: the real broker, views in a file) and on a SQLite log with PostgreSQL
views, and the views are the fold of the log either way."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger import bootstrap
from ledger.bootstrap import build_event_log, build_view_writer
from ledger.settings import LogBackend, Settings, ViewsBackend, load_settings
from tests.streams import append_all, assert_views_match_fold, project_all, stream


@pytest.fixture(params=[("kafka", "sqlite"), ("sqlite", "postgres")], ids=lambda p: "+".join(p))
def mixed(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    log_backend, views_backend = request.param
    servers: dict[str, object] = {}
    if log_backend == "kafka":
        topic = request.getfixturevalue("kafka_topic")
        servers.update(topic=topic, projector_group=f"g-{topic}",
                       kafka_bootstrap_servers=request.getfixturevalue("kafka_bootstrap"))  # fmt: skip
    else:
        servers["topic"] = "events"
    if views_backend == "postgres":
        servers.update(postgres_schema=request.getfixturevalue("pg_schema"),
                       postgres_dsn=request.getfixturevalue("postgres_dsn"))  # fmt: skip
    return load_settings(log_backend=log_backend, views_backend=views_backend, data_dir=tmp_path, partitions=4,
                         consumer_poll_timeout_ms=100, projector_batch_wait_ms=20, **servers)  # fmt: skip


def test_the_projector_folds_one_backends_log_into_the_others_views(mixed: Settings) -> None:
    from ledger.eventlog.kafka import KafkaEventLog
    from ledger.projections.sqlite import SqliteViewWriter

    events = stream(seed=71, tasks=120)
    with build_event_log(mixed) as log:
        assert isinstance(log, KafkaEventLog) is (mixed.log_backend is LogBackend.KAFKA)
        positions = append_all(log, events)
        ends = log.end_offsets()
    project_all(mixed)
    with build_view_writer(mixed) as store:  # the schema goes with the pg_schema fixture
        assert isinstance(store, SqliteViewWriter) is (mixed.views_backend is ViewsBackend.SQLITE)
        assert_views_match_fold(store, events, positions)
        assert store.offsets("views", mixed.topic) == ends


def test_the_start_up_line_names_each_ports_place(mixed: Settings) -> None:
    line = bootstrap.place(mixed)
    if mixed.log_backend is LogBackend.KAFKA:
        kafka = f"Kafka at {mixed.kafka_bootstrap_servers}, topic {mixed.topic}"
        assert line == f"{kafka}; views in SQLite in {mixed.data_dir}"
    else:
        assert line.startswith(f"SQLite event log in {mixed.data_dir}, topic events; views in PostgreSQL at 127.0.0.1:")
        assert "ledger:ledger" not in line  # never the password
