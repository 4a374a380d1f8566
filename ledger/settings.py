"""The one settings object: the only reader of ``LEDGER_*`` environment variables.

Every other module receives a ``Settings`` instance (built once in ``bootstrap``), so
configuration errors surface at start-up with the variable's name, never mid-run.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class LogBackend(StrEnum):
    """Where the event log lives: a SQLite file in the data dir, or a Kafka topic."""

    SQLITE = "sqlite"
    KAFKA = "kafka"


class ViewsBackend(StrEnum):
    """Where the views live: a SQLite file in the data dir, or a PostgreSQL schema."""

    SQLITE = "sqlite"
    POSTGRES = "postgres"


class Backend(StrEnum):
    """The shorthand for both ports: zero-setup SQLite files, or the real Kafka + PostgreSQL."""

    EMBEDDED = "embedded"
    KAFKA_POSTGRES = "kafka+postgres"

    @property
    def ports(self) -> tuple[LogBackend, ViewsBackend]:
        if self is Backend.EMBEDDED:
            return LogBackend.SQLITE, ViewsBackend.SQLITE
        return LogBackend.KAFKA, ViewsBackend.POSTGRES


class KafkaClient(StrEnum):
    """The Kafka client under the event log: kafka-python (pure Python, the reference
    adapter) or confluent-kafka (librdkafka's C producer and consumer, several times faster)."""

    KAFKA_PYTHON = "kafka-python"
    CONFLUENT = "confluent"


class Compression(StrEnum):
    NONE = "none"
    LZ4 = "lz4"
    GZIP = "gzip"


class SettingsError(ValueError):
    """Raised when the environment holds an invalid ``LEDGER_*`` value."""


ENV_PREFIX = "LEDGER_"


def default_data_dir() -> Path:
    """One per-user place (``~/.local/share/task-ledger`` on Linux), absolute: a worker, the
    projector and the API started from different directories must share one ledger."""
    return Path(user_data_dir("task-ledger", appauthor=False))


class Settings(BaseSettings):
    """Configuration of a ledger process. Field ``foo`` is read from ``LEDGER_FOO``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    backend: Backend = Field(Backend.EMBEDDED, description="both ports at once: embedded | kafka+postgres")
    log_backend: LogBackend = Field(LogBackend.SQLITE, description="sqlite | kafka (default: from backend)")
    views_backend: ViewsBackend = Field(ViewsBackend.SQLITE, description="sqlite | postgres (default: from backend)")
    data_dir: Path = Field(
        default_factory=default_data_dir, description="where the embedded backend keeps its SQLite files"
    )

    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", description="host:port[,host:port…]")
    kafka_client: KafkaClient = Field(
        KafkaClient.KAFKA_PYTHON, description="the event log's Kafka client: kafka-python | confluent (librdkafka)"
    )
    topic: str = Field("task-events", pattern=r"^[A-Za-z0-9._-]{1,249}$", description="the event topic")
    partitions: int = Field(6, ge=1, le=1000, description="partitions of the event topic when created")
    replication_factor: int = Field(1, ge=1, le=10, description="replication factor when a topic is created")
    compression: Compression = Field(Compression.LZ4, description="producer batch compression")
    linger_ms: int = Field(5, ge=0, le=60_000, description="producer batching delay")
    batch_size: int = Field(262_144, ge=1024, le=16_777_216, description="producer batch bytes")
    request_timeout_ms: int = Field(30_000, ge=1000, le=600_000, description="producer/consumer request timeout")
    delivery_timeout_ms: int = Field(
        60_000, ge=1000, le=3_600_000, description="how long an append may take before it fails"
    )
    consumer_poll_timeout_ms: int = Field(500, ge=1, le=60_000, description="one poll's wait for new records")
    consumer_session_timeout_ms: int = Field(10_000, ge=1000, le=300_000, description="consumer group session timeout")
    consumer_max_poll_interval_ms: int = Field(
        300_000, ge=1000, le=3_600_000, description="max time between polls in a group"
    )

    postgres_dsn: str = Field(
        "postgresql://ledger:ledger@127.0.0.1:5432/ledger", description="libpq connection string of the views"
    )

    postgres_schema: str = Field("ledger", pattern=r"^[a-z_][a-z0-9_]{0,62}$", description="schema of the views")

    projector_group: str = Field("ledger-projector", min_length=1, description="consumer group of the projectors")
    projector_instance_id: str | None = Field(
        None, min_length=1, max_length=249, description="static group member id (a restart keeps its partitions)"
    )
    projector_batch_size: int = Field(5000, ge=1, le=100_000, description="most events in one transaction")
    projector_batch_wait_ms: int = Field(200, ge=0, le=60_000, description="longest time filling a batch")
    projector_processes: int = Field(
        1, ge=1, le=64, description="`ledger project`: projector processes on this machine, members of one group"
    )
    projector_metrics_port: int | None = Field(
        None, ge=1, le=65535, description="port where `ledger project` serves Prometheus metrics (unset: none)"
    )

    ingest_queue: str = Field(
        "ledger.celeryev", pattern=r"^[A-Za-z0-9._:-]{1,200}$",
        description="`ledger ingest celery`: its broker queue (RabbitMQ: durable; one reader, the rest stand by)",
    )
    ingest_expires_s: float = Field(
        86_400.0, gt=0, le=2_592_000,  # celery_broker.MAX_EXPIRES_S
        description="`ledger ingest celery` on RabbitMQ: how long events wait in its queue for an absent ingester",
    )

    log_level: str = Field("WARNING", pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$", description="log level")
    log_format: str = Field("text", pattern=r"^(text|json)$", description="text (key=value) or json lines")

    api_token: SecretStr | None = Field(None, description="bearer token the HTTP API requires (unset: no auth)")
    sse_keepalive_seconds: float = Field(15.0, gt=0, le=300, description="seconds between SSE keep-alives")
    sse_max_streams: int = Field(1000, ge=1, le=100_000, description="most open /events/stream connections")

    cipher_key: SecretStr | None = Field(None, description="base64 AES key; set to encrypt payloads")
    compress_payloads: bool = Field(False, description="zlib-compress each payload (prefer Kafka's lz4)")

    @model_validator(mode="before")
    @classmethod
    def _ports_follow_the_shorthand(cls, data: Any) -> Any:
        """``backend`` picks both ports; ``log_backend`` / ``views_backend`` override one."""
        if not isinstance(data, dict):
            return data
        try:
            log, views = Backend(data.get("backend", Backend.EMBEDDED)).ports
        except ValueError:
            return data  # the field's own rule names the bad value
        return {"log_backend": log, "views_backend": views, **data}

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _host_port_list(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"must be host:port[,host:port…], got {server.strip()!r}")
        return value

    @field_validator("postgres_dsn")
    @classmethod
    def _dsn(cls, value: str) -> str:
        if not (value.startswith(("postgresql://", "postgres://")) or "=" in value):
            raise ValueError("must be a postgresql:// URL or a libpq key=value string")
        return value


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; raise ``SettingsError`` naming each bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(describe_errors(exc)) from None


def describe_errors(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        variable = f"{ENV_PREFIX}{field.upper()}"
        lines.append(f"{variable}: {error['msg']} (got {error.get('input')!r})")
    return "invalid settings: " + "; ".join(lines)
