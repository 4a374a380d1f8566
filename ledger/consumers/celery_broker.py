"""Celery's event exchange on the broker, read the way ``celery events`` reads it, but
with the guarantees each broker allows (kombu, Celery's own transport library).

- **RabbitMQ** (``amqp://``): a durable, named queue bound to the ``celeryev`` topic
  exchange with ``#`` (Celery's ``event_queue_durable`` idea), so events wait for an absent
  reader, up to ``expires`` (the queue's message TTL and its own expiry). The queue has a
  single active consumer (``x-single-active-consumer``): a second ingester on it waits as a
  standby and takes over the moment the first goes, instead of sharing the stream: a task's
  ``task-started`` … carry no ``retries``, so the attempt they belong to is known only to
  the reader that saw the task's ``task-received``. Manual acks with
  a bounded prefetch: a batch is acknowledged (one ``basic.ack`` with ``multiple``) only
  once the caller has stored it; a reader killed before that leaves its batch unacked, and
  RabbitMQ delivers it again.
- **Redis** (``redis://``): Celery's event exchange is a fanout there, which kombu builds
  on Redis PUBLISH: nothing is kept for a reader that is not subscribed, and there is no
  ack. The reader takes an exclusive, auto-deleted queue of its own (as ``celery events``
  does); what is published while it is away, or while Redis disconnects it for reading too
  slowly (its pub/sub output buffer limit), is not delivered to it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.exceptions import OperationalError
from kombu.message import Message
from kombu.messaging import Consumer

__all__ = ["SCHEMES", "BrokerEvents", "BrokerRefused", "BrokerUnavailable", "EventSourceConfig", "Received"]

SCHEMES: Final = {"amqp": "rabbitmq", "amqps": "rabbitmq", "pyamqp": "rabbitmq", "redis": "redis", "rediss": "redis"}
"""The broker URLs the ingester reads, and the broker each names."""


MAX_EXPIRES_S: Final = 30 * 86_400
"""The longest a RabbitMQ queue keeps events for an absent ingester (``LEDGER_INGEST_EXPIRES_S``'s bound)."""


class BrokerUnavailable(RuntimeError):
    """The broker cannot be reached (or dropped the connection): wait and reconnect."""


class BrokerRefused(RuntimeError):
    """The broker answered no (bad credentials, a queue declared with other arguments): not
    something waiting fixes; the message says what to change."""


@dataclass(frozen=True, slots=True)
class EventSourceConfig:
    """Where Celery's events are and how the ingester's queue is declared."""

    url: str
    queue: str = "ledger.celeryev"
    exchange: str = "celeryev"
    expires_s: float = 86_400.0
    prefetch: int = 1000
    transport_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_broker_url(self.url)
        if not self.queue.strip():
            raise ValueError("--queue: the queue name must not be blank")
        if not 0 < self.expires_s <= MAX_EXPIRES_S:
            raise ValueError(f"--expires: must be more than 0 s and at most 30 days, got {self.expires_s:.15g} s")
        if not 1 <= self.prefetch <= 65_535:
            raise ValueError(f"prefetch: must be 1 to 65535, got {self.prefetch}")

    @property
    def broker(self) -> str:
        """``rabbitmq`` or ``redis``."""
        return SCHEMES[urlsplit(self.url).scheme]


def check_broker_url(url: str) -> None:
    """``ValueError`` naming the rule for a URL the ingester cannot read."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise ValueError(f"--broker: {url!r} is not a URL ({exc})") from None
    if parts.scheme not in SCHEMES:
        kinds = ", ".join(f"{s}://" for s in SCHEMES)
        raise ValueError(f"--broker: {redact(url)!r} is not a RabbitMQ or Redis URL (one of {kinds})")


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


@dataclass(frozen=True, slots=True)
class Received:
    """One message from the event exchange, as it came: its bytes are what a dead letter keeps."""

    body: bytes
    content_type: str | None
    routing_key: str
    redelivered: bool
    message: Message


class BrokerEvents:
    """One connection, one consumer: ``open``, ``drain`` batches, ``ack`` them, ``close``."""

    def __init__(self, config: EventSourceConfig) -> None:
        self.config = config
        self.acks = config.broker == "rabbitmq"
        """Whether the broker keeps a message until it is acknowledged (RabbitMQ only)."""
        self._connection: Connection | None = None
        self._inbox: list[Received] = []

    @property
    def where(self) -> str:
        if self.acks:
            return f"RabbitMQ at {redact(self.config.url)}, queue {self.config.queue!r} on {self.config.exchange!r}"
        return f"Redis at {redact(self.config.url)}, fanout {self.config.exchange!r} (no queue kept, no acks)"

    def _queue(self) -> Queue:
        if self.acks:
            exchange = Exchange(self.config.exchange, type="topic")  # Celery's event_exchange
            return Queue(self.config.queue, exchange, routing_key="#", durable=True, auto_delete=False,
                         message_ttl=self.config.expires_s, expires=self.config.expires_s,
                         queue_arguments={"x-single-active-consumer": True})  # fmt: skip
        exchange = Exchange(self.config.exchange, type="fanout")  # Celery's on Redis (celery.events.get_exchange)
        return Queue(f"{self.config.queue}.{uuid.uuid4()}", exchange, routing_key="#", durable=False,
                     auto_delete=True, exclusive=True, message_ttl=self.config.expires_s)  # fmt: skip

    def open(self) -> None:
        """Connect, declare the queue and start consuming; ``BrokerUnavailable`` to retry,
        ``BrokerRefused`` when the broker says no."""
        self.close()
        connection = Connection(self.config.url, transport_options=self.config.transport_options,
                                connect_timeout=5)  # fmt: skip
        self._connection = connection
        with self._errors("connecting"):
            connection.ensure_connection(max_retries=0)  # the retry policy is ours
            consumer = Consumer(connection.channel(), queues=[self._queue()], on_message=self._received,
                                no_ack=not self.acks)  # fmt: skip
            if self.acks:
                consumer.qos(prefetch_count=self.config.prefetch)
            consumer.consume()

    def drain(self, most: int, wait_s: float) -> list[Received]:
        """Up to ``most`` messages: waits up to ``wait_s`` for the first, then takes what
        arrives without waiting. RabbitMQ sends no more than the prefetch unacknowledged."""
        assert self._connection is not None, "open() first"
        with self._errors("reading"):
            self._wait(wait_s)
            while self._inbox and len(self._inbox) < most and self._wait(0.0):
                pass
        taken, self._inbox = self._inbox[:most], self._inbox[most:]
        return taken

    def _wait(self, seconds: float) -> bool:
        """One ``drain_events``: True when it delivered something."""
        before = len(self._inbox)
        try:
            assert self._connection is not None
            self._connection.drain_events(timeout=max(seconds, 0.001))
        except TimeoutError:  # socket.timeout: nothing came
            return False
        return len(self._inbox) > before

    def _received(self, message: Message) -> None:
        body = message.body
        info = message.delivery_info or {}
        self._inbox.append(Received(
            body=body if isinstance(body, bytes) else str(body).encode(), content_type=message.content_type,
            routing_key=str(info.get("routing_key") or ""), redelivered=bool(info.get("redelivered")),
            message=message,
        ))  # fmt: skip

    def ack(self, batch: list[Received]) -> None:
        """Acknowledge every message of ``batch`` (and all before it on this channel) at once."""
        if self.acks and batch:
            with self._errors("acknowledging"):
                batch[-1].message.ack(multiple=True)

    def close(self) -> None:
        """Drop the connection; unacknowledged messages go back to the queue. Idempotent."""
        connection, self._connection, self._inbox = self._connection, None, []
        if connection is not None:
            try:
                connection.release()
            except (OSError, *connection.connection_errors, *connection.channel_errors):
                pass  # already gone: nothing to release

    def _errors(self, doing: str) -> _Translated:
        assert self._connection is not None
        return _Translated(self._connection, f"{doing} {self.where}")


class _Translated:
    """kombu's and the drivers' errors as ``BrokerUnavailable`` / ``BrokerRefused``."""

    def __init__(self, connection: Connection, what: str) -> None:
        self.connection, self.what = connection, what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or isinstance(exc, BrokerRefused | BrokerUnavailable):
            return
        connection = self.connection
        transient = (OSError, OperationalError, *connection.recoverable_connection_errors,
                     *connection.recoverable_channel_errors)  # fmt: skip
        refused = (*connection.connection_errors, *connection.channel_errors)
        if isinstance(exc, transient) and not _refusal(exc):
            raise BrokerUnavailable(f"{self.what}: {exc or type(exc).__name__}") from exc
        if isinstance(exc, refused) or _refusal(exc):
            hint = _HINTS.get(getattr(exc, "reply_code", None), "")
            raise BrokerRefused(f"{self.what}: {exc}{hint}") from exc


_HINTS: Final[dict[object, str]] = {
    406: " (the queue exists with other arguments: delete it, or choose another --queue)",
}


def _refusal(exc: BaseException) -> bool:
    """An answer that no retry changes: wrong credentials or virtual host, a queue that
    exists with other arguments (AMQP reply codes 403, 404, 406, 530), kombu's wrapper of
    one included."""
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, "reply_code", None) in (403, 404, 406, 530) or type(seen).__name__ == "AuthenticationError":
            return True
        seen = seen.__cause__
    return False
