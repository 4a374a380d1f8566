"""The one factory: settings → the adapters of each port (event log, view writer, view
reader), and what is built on them (emit SDK, projector, subscriber, rebuild, queries).

Each port's backend is chosen on its own (``Settings.log_backend``, ``views_backend``; a
Kafka log with SQLite views is a valid dev setup): ``LOGS`` and ``VIEWS`` map a backend to
the factory of its adapters, so a new backend is one entry there, not a branch in every
builder. Only this module chooses backends and imports the adapter modules, each only
when its backend is used (the embedded default never loads a Kafka client or psycopg2);
a Kafka log's client (``Settings.kafka_client``) is chosen the same way, in ``_KafkaLog``.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Final

from ledger.codec import Codec
from ledger.consumers.deadletter import DeadLetterSink, dead_letter_topic
from ledger.consumers.positions import GroupPositions, MemoryPositions, PositionStore
from ledger.consumers.projector import Projector
from ledger.consumers.rebuild import Rebuild
from ledger.consumers.subscriber import EventFilter, StartAt, Subscriber
from ledger.eventlog.base import EventLog
from ledger.eventlog.group import GroupMember, PartitionSource, WholeLogSource
from ledger.progress import Progress
from ledger.projections.failures import FailureQueries
from ledger.projections.queries import TaskQueries
from ledger.projections.rebuild import Swapper
from ledger.projections.series import SeriesQueries
from ledger.projections.store import ViewReader, ViewWriter
from ledger.projections.workers import WorkerQueries
from ledger.sdk import Ledger
from ledger.settings import KafkaClient, LogBackend, Settings, SettingsError, ViewsBackend

if TYPE_CHECKING:
    from ledger.consumers.celery_broker import EventSourceConfig
    from ledger.consumers.celery_ingest import Ingester, Translate

# -- the adapters of each port, per backend --------------------------------------------------


class LogAdapters(ABC):
    """What one log backend makes: the event log and its group members."""

    @abstractmethod
    def open(self, settings: Settings, topic: str | None, *, create: bool) -> EventLog:
        """The log of ``topic`` (default: the event topic). ``create=False`` for commands
        that only read: a file-based log then creates nothing."""

    @abstractmethod
    def join(self, settings: Settings, log: EventLog, group: str, *, client_id: str,
             instance_id: str | None = None) -> GroupMember:  # fmt: skip
        """A member of consumer group ``group`` reading ``log``'s topic."""

    @abstractmethod
    def where(self, settings: Settings) -> str:
        """Where the log is, for messages (never a password)."""


class ViewAdapters(ABC):
    """What one views backend makes: the view writer, its rebuild half, the view reader."""

    @abstractmethod
    def writer(self, settings: Settings, schema: str | None) -> ViewWriter:
        """The views a projector writes; ``schema`` names a separate set of them (tests, the demo)."""

    @abstractmethod
    def swapper(self, live: ViewWriter) -> Swapper:
        """The backend half of ``ledger rebuild`` for the views ``live``."""

    @abstractmethod
    def reader(self, settings: Settings) -> ViewReader:
        """Reads the views, their history and time travel included (its own connection)."""

    @abstractmethod
    def where(self, settings: Settings) -> str:
        """Where the views are, for messages (never a password)."""


def _need_confluent() -> None:
    """confluent-kafka is an extra: without it, say so in one line (not an import traceback)."""
    if importlib.util.find_spec("confluent_kafka") is None:
        raise SettingsError("LEDGER_KAFKA_CLIENT=confluent needs confluent-kafka: pip install 'task-ledger[confluent]'")


class _KafkaLog(LogAdapters):
    def open(self, settings: Settings, topic: str | None, *, create: bool) -> EventLog:
        if settings.kafka_client is KafkaClient.CONFLUENT:
            _need_confluent()
            from ledger.eventlog.confluent import ConfluentEventLog

            return ConfluentEventLog.from_settings(settings, topic=topic)
        from ledger.eventlog.kafka import KafkaEventLog

        return KafkaEventLog.from_settings(settings, topic=topic)

    def join(self, settings: Settings, log: EventLog, group: str, *, client_id: str,
             instance_id: str | None = None) -> GroupMember:  # fmt: skip
        if settings.kafka_client is KafkaClient.CONFLUENT:
            _need_confluent()
            from ledger.eventlog.confluent_group import ConfluentGroupMember

            return ConfluentGroupMember.from_settings(settings, log.topic, group, client_id=client_id,
                                                      instance_id=instance_id)  # fmt: skip
        from ledger.eventlog.kafka_group import KafkaGroupMember

        return KafkaGroupMember.from_settings(settings, log.topic, group, client_id=client_id, instance_id=instance_id)

    def where(self, settings: Settings) -> str:
        return f"Kafka at {settings.kafka_bootstrap_servers}, topic {settings.topic}"


class _SqliteLog(LogAdapters):
    def open(self, settings: Settings, topic: str | None, *, create: bool) -> EventLog:
        from ledger.eventlog.sqlite import SqliteEventLog

        return SqliteEventLog.from_settings(settings, topic=topic, create=create)

    def join(self, settings: Settings, log: EventLog, group: str, *, client_id: str,
             instance_id: str | None = None) -> GroupMember:  # fmt: skip
        from ledger.eventlog.sqlite import SqliteEventLog
        from ledger.eventlog.sqlite_group import SqliteGroupMember

        assert isinstance(log, SqliteEventLog), f"a SQLite group member needs a SQLite log, not {log!r}"
        return SqliteGroupMember(log, group)

    def where(self, settings: Settings) -> str:
        return f"SQLite event log in {settings.data_dir.absolute()}, topic {settings.topic}"


class _PostgresViews(ViewAdapters):
    def writer(self, settings: Settings, schema: str | None) -> ViewWriter:
        from ledger.projections.postgres import PostgresViewWriter

        return PostgresViewWriter(settings.postgres_dsn, schema or settings.postgres_schema)

    def swapper(self, live: ViewWriter) -> Swapper:
        from ledger.projections.postgres import PostgresViewWriter
        from ledger.projections.postgres_rebuild import PostgresSwapper

        assert isinstance(live, PostgresViewWriter)
        return PostgresSwapper(live)

    def reader(self, settings: Settings) -> ViewReader:
        from ledger.projections.postgres import postgres_reader

        return postgres_reader(settings.postgres_dsn, settings.postgres_schema)

    def where(self, settings: Settings) -> str:
        from ledger.projections.postgres import server

        return f"PostgreSQL at {server(settings.postgres_dsn)}, schema {settings.postgres_schema}"


class _SqliteViews(ViewAdapters):
    def writer(self, settings: Settings, schema: str | None) -> ViewWriter:
        from ledger.projections.sqlite import SqliteViewWriter

        name = f"views-{schema}.db" if schema else "views.db"
        return SqliteViewWriter(settings.data_dir / name)

    def swapper(self, live: ViewWriter) -> Swapper:
        from ledger.projections.sqlite import SqliteViewWriter
        from ledger.projections.sqlite_rebuild import SqliteSwapper

        assert isinstance(live, SqliteViewWriter)
        return SqliteSwapper(live)

    def reader(self, settings: Settings) -> ViewReader:
        from ledger.projections.sqlite import sqlite_reader

        return sqlite_reader(settings.data_dir / "views.db")

    def where(self, settings: Settings) -> str:
        return f"SQLite in {settings.data_dir.absolute()}"


LOGS: Final[dict[LogBackend, LogAdapters]] = {LogBackend.KAFKA: _KafkaLog(), LogBackend.SQLITE: _SqliteLog()}
VIEWS: Final[dict[ViewsBackend, ViewAdapters]] = {
    ViewsBackend.POSTGRES: _PostgresViews(),
    ViewsBackend.SQLITE: _SqliteViews(),
}


def logs(settings: Settings) -> LogAdapters:
    return LOGS[settings.log_backend]


def views(settings: Settings) -> ViewAdapters:
    return VIEWS[settings.views_backend]


def place(settings: Settings) -> str:
    """Which ledger a process uses, in one line (never a password): a projector and an API
    that name their ledger cannot silently use different ones."""
    if settings.log_backend is LogBackend.SQLITE and settings.views_backend is ViewsBackend.SQLITE:
        return f"embedded ledger in {settings.data_dir.absolute()}"
    return f"{logs(settings).where(settings)}; views in {views(settings).where(settings)}"


# -- the builders ------------------------------------------------------------------------------


def build_event_log(settings: Settings, topic: str | None = None, *, create: bool = True) -> EventLog:
    """``create=False`` for commands that only read: the embedded log then creates nothing."""
    return logs(settings).open(settings, topic, create=create)


def build_view_writer(settings: Settings, schema: str | None = None) -> ViewWriter:
    """The views a projector (or a rebuild, or ``ledger migrate``) writes."""
    return views(settings).writer(settings, schema)


def build_view_reader(settings: Settings) -> ViewReader:
    """Reads the views, their history and time travel included (its own connection)."""
    return views(settings).reader(settings)


def build_codec(settings: Settings) -> Codec:
    return Codec.from_settings(settings)


def build_ledger(settings: Settings, log: EventLog | None = None) -> Ledger:
    """The emit SDK a worker uses."""
    return Ledger(log or build_event_log(settings), build_codec(settings))


def build_queries(settings: Settings, reader: ViewReader | None = None) -> TaskQueries:
    return TaskQueries(reader or build_view_reader(settings))


def build_failure_queries(settings: Settings, reader: ViewReader | None = None) -> FailureQueries:
    return FailureQueries(reader or build_view_reader(settings))


def build_worker_queries(settings: Settings, reader: ViewReader | None = None) -> WorkerQueries:
    return WorkerQueries(reader or build_view_reader(settings))


def build_series_queries(settings: Settings, reader: ViewReader | None = None) -> SeriesQueries:
    return SeriesQueries(reader or build_view_reader(settings))


def build_source(settings: Settings, log: EventLog, *, group: str | None = None) -> PartitionSource:
    """A member of the projectors' consumer group, so projectors share partitions (the
    embedded log has one member: it owns them all)."""
    return logs(settings).join(settings, log, group or settings.projector_group, client_id="task-ledger-projector",
                               instance_id=settings.projector_instance_id)  # fmt: skip


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
    return views(settings).swapper(live)


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
    """A subscriber in consumer group ``group`` (positions kept by the group: Kafka
    committed offsets, or a table beside the embedded log); ``group=None`` follows without
    saving (``tail``), and so only reads: it creates nothing."""
    log = build_event_log(settings, create=group is not None)
    source: PartitionSource
    positions: PositionStore
    if group is None:
        source, positions = WholeLogSource(log), MemoryPositions()
    else:
        member = logs(settings).join(settings, log, group, client_id=f"ledger-subscriber-{group}")
        source, positions = member, GroupPositions(member)
    return Subscriber(source, positions, log, start=start, wanted=wanted, codec=build_codec(settings),
                      poll_timeout_ms=settings.consumer_poll_timeout_ms, save_every=save_every)  # fmt: skip


def build_ingester(settings: Settings, source: EventSourceConfig, translate: Translate, *,
                   batch_size: int = 500) -> Ingester:  # fmt: skip
    """The Celery-events ingester: ``source``'s events, through ``translate``, into the
    event log (the bad ones into its dead-letter topic). kombu is imported only here."""
    from ledger.consumers.celery_broker import BrokerEvents
    from ledger.consumers.celery_ingest import Ingester

    log = build_event_log(settings)
    dead_letters = DeadLetterSink(build_event_log(settings, topic=dead_letter_topic(log.topic)))
    return Ingester(BrokerEvents(source), log, dead_letters, translate, codec=build_codec(settings),
                    batch_size=batch_size, poll_timeout_ms=settings.consumer_poll_timeout_ms)  # fmt: skip
