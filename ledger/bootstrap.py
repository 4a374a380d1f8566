"""The one factory: settings → event log, view writer and reader, codec, emit SDK, projector.

Only this module chooses backends (and so imports the backend modules); everything else
receives the objects it builds.
"""

from __future__ import annotations

from ledger.codec import Codec
from ledger.consumers.deadletter import DeadLetterSink, dead_letter_topic
from ledger.consumers.positions import MemoryPositions, PositionStore
from ledger.consumers.projector import Projector
from ledger.consumers.rebuild import Rebuild
from ledger.consumers.source import PartitionSource, WholeLogSource
from ledger.consumers.subscriber import EventFilter, StartAt, Subscriber
from ledger.eventlog.base import EventLog
from ledger.progress import Progress
from ledger.projections.queries import TaskQueries
from ledger.projections.rebuild import Swapper
from ledger.projections.store import ViewReader, ViewWriter
from ledger.sdk import Ledger
from ledger.settings import Backend, Settings


def uses_kafka(settings: Settings) -> bool:
    return settings.backend is Backend.KAFKA_POSTGRES


def build_event_log(settings: Settings, topic: str | None = None, *, create: bool = True) -> EventLog:
    """``create=False`` for commands that only read: the embedded log then creates nothing."""
    if uses_kafka(settings):
        from ledger.eventlog.kafka import KafkaEventLog

        return KafkaEventLog.from_settings(settings, topic=topic)
    from ledger.eventlog.sqlite import SqliteEventLog

    return SqliteEventLog.from_settings(settings, topic=topic, create=create)


def build_view_writer(settings: Settings, schema: str | None = None) -> ViewWriter:
    """The views a projector (or a rebuild, or ``ledger migrate``) writes."""
    if uses_kafka(settings):
        from ledger.projections.postgres import PostgresViewWriter

        return PostgresViewWriter(settings.postgres_dsn, schema or settings.postgres_schema)
    from ledger.projections.sqlite import SqliteViewWriter

    name = f"views-{schema}.db" if schema else "views.db"
    return SqliteViewWriter(settings.data_dir / name)


def build_view_reader(settings: Settings) -> ViewReader:
    """Reads the views, their history and time travel included (its own connection)."""
    if uses_kafka(settings):
        from ledger.projections.postgres import postgres_reader

        return postgres_reader(settings.postgres_dsn, settings.postgres_schema)
    from ledger.projections.sqlite import sqlite_reader

    return sqlite_reader(settings.data_dir / "views.db")


def build_codec(settings: Settings) -> Codec:
    return Codec.from_settings(settings)


def build_ledger(settings: Settings, log: EventLog | None = None) -> Ledger:
    """The emit SDK a worker uses."""
    return Ledger(log or build_event_log(settings), build_codec(settings))


def build_queries(settings: Settings, reader: ViewReader | None = None) -> TaskQueries:
    return TaskQueries(reader or build_view_reader(settings))


def build_source(settings: Settings, log: EventLog, *, group: str | None = None) -> PartitionSource:
    """A consumer-group member on Kafka (so projectors share partitions); the whole log on
    the embedded backend, which runs one projector."""
    if uses_kafka(settings):
        from ledger.eventlog.kafka_group import KafkaGroupSource

        return KafkaGroupSource(
            settings.kafka_bootstrap_servers,
            log.topic,
            group or settings.projector_group,
            session_timeout_ms=settings.consumer_session_timeout_ms,
            max_poll_interval_ms=settings.consumer_max_poll_interval_ms,
            request_timeout_ms=settings.request_timeout_ms,
            instance_id=settings.projector_instance_id,
        )
    return WholeLogSource(log)


def build_projector(
    settings: Settings,
    *,
    store: ViewWriter | None = None,
    log: EventLog | None = None,
    group: str | None = None,
    projection: str = "views",
) -> Projector:
    log = log or build_event_log(settings)
    dead_letters = DeadLetterSink(build_event_log(settings, topic=dead_letter_topic(log.topic)))
    return Projector(
        build_source(settings, log, group=group),
        store or build_view_writer(settings),
        dead_letters,
        codec=build_codec(settings),
        projection=projection,
        batch_size=settings.projector_batch_size,
        batch_wait_ms=settings.projector_batch_wait_ms,
        poll_timeout_ms=settings.consumer_poll_timeout_ms,
    )


def build_swapper(settings: Settings, live: ViewWriter) -> Swapper:
    """The backend half of ``ledger rebuild`` for the views ``live``."""
    if uses_kafka(settings):
        from ledger.projections.postgres import PostgresViewWriter
        from ledger.projections.postgres_rebuild import PostgresSwapper

        assert isinstance(live, PostgresViewWriter)
        return PostgresSwapper(live)
    from ledger.projections.sqlite import SqliteViewWriter
    from ledger.projections.sqlite_rebuild import SqliteSwapper

    assert isinstance(live, SqliteViewWriter)
    return SqliteSwapper(live)


def build_rebuild(settings: Settings, *, progress: Progress | None = None) -> Rebuild:
    live = build_view_writer(settings)
    live.migrate()
    return Rebuild(
        build_swapper(settings, live),
        build_event_log(settings),
        codec=build_codec(settings),
        batch_size=max(settings.projector_batch_size, 10_000),
        progress=progress,
    )


def build_subscriber(
    settings: Settings,
    *,
    group: str | None,
    start: StartAt = "stored",
    wanted: EventFilter | None = None,
    save_every: int = 1,
) -> Subscriber:
    """A subscriber in consumer group ``group`` (positions saved: Kafka committed offsets,
    or a table beside the embedded log); ``group=None`` follows without saving (``tail``),
    and so only reads: it creates nothing."""
    log = build_event_log(settings, create=group is not None)
    source: PartitionSource
    positions: PositionStore
    if group is None:
        source, positions = WholeLogSource(log), MemoryPositions()
    elif uses_kafka(settings):
        from ledger.eventlog.kafka_group import KafkaGroupPositions, KafkaGroupSource

        group_source = KafkaGroupSource(
            settings.kafka_bootstrap_servers, log.topic, group,
            session_timeout_ms=settings.consumer_session_timeout_ms,
            max_poll_interval_ms=settings.consumer_max_poll_interval_ms,
            request_timeout_ms=settings.request_timeout_ms, client_id=f"ledger-subscriber-{group}",
        )  # fmt: skip
        source, positions = group_source, KafkaGroupPositions(group_source)
    else:
        from ledger.eventlog.sqlite_positions import SqlitePositions

        source, positions = WholeLogSource(log), SqlitePositions(settings.data_dir / "events.db", group, log.topic)
    return Subscriber(source, positions, log, start=start, wanted=wanted, codec=build_codec(settings),
                      poll_timeout_ms=settings.consumer_poll_timeout_ms, save_every=save_every)  # fmt: skip

