"""``ledger ingest celery`` from Python: a Celery fleet's own events into the ledger, with
no change to the fleet's code (its workers need ``-E`` and, for PENDING, the clients'
``task_send_sent_event``).

    from ledger.contrib.celery_ingest import ingest_celery

    ingest_celery("amqp://guest:guest@rabbit:5672//")   # until SIGTERM / Ctrl-C
    ingest_celery(app="proj.celery")                    # the broker of the app's conf

What each broker guarantees (``ledger.consumers.celery_broker``): on RabbitMQ a durable
queue keeps events for an absent ingester and a batch is acknowledged only once the log
has it; on Redis nothing is kept and nothing acknowledged. The loop is
``ledger.consumers.celery_ingest``; the translation, ``ledger.contrib.celery_events``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ledger.bootstrap import build_ingester
from ledger.consumers.celery_broker import EventSourceConfig
from ledger.consumers.celery_ingest import Ingester, IngestStats
from ledger.consumers.runner import install_stop_signals
from ledger.contrib.celery_app import load_app
from ledger.contrib.celery_events import CeleryEventTranslator
from ledger.eventlog.base import AppendError, EventLogUnavailable
from ledger.retry import Backoff, keep_trying
from ledger.settings import Settings, load_settings

__all__ = ["AppBroker", "app_broker", "ingest_celery", "run_ingest", "source_config"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AppBroker:
    """What a Celery app's configuration says about its events."""

    url: str
    transport_options: dict[str, Any]
    exchange: str


def app_broker(spec: str) -> AppBroker:
    """The broker, transport options and event exchange of the Celery app ``spec`` (as
    ``celery -A`` takes it); ``ValueError`` naming ``--app`` when it cannot be loaded or
    sends no JSON events."""
    app = load_app(spec)
    if app.conf.event_serializer != "json":
        raise ValueError(f"--app: the app's event_serializer is {app.conf.event_serializer!r}; the ingester reads JSON")
    url = app.connection_for_read().as_uri(include_password=True)
    return AppBroker(url, dict(app.conf.broker_transport_options or {}), app.conf.event_exchange)


def source_config(settings: Settings, *, broker: str | None = None, app: str | None = None,
                  queue: str | None = None, expires_s: float | None = None,
                  prefetch: int = 1000) -> EventSourceConfig:  # fmt: skip
    """Where to read: ``broker`` (else the app's), the app's transport options and event
    exchange, the queue and expiry (else the settings')."""
    if broker is None and app is None:
        raise ValueError("--broker: give the broker's URL (amqp://… or redis://…), or --app with a Celery app")
    known = app_broker(app) if app is not None else None
    url = broker or (known.url if known is not None else "")
    return EventSourceConfig(
        url, queue=settings.ingest_queue if queue is None else queue,
        expires_s=settings.ingest_expires_s if expires_s is None else expires_s,
        exchange=known.exchange if known is not None else "celeryev", prefetch=prefetch,
        transport_options=known.transport_options if known is not None else {},
    )  # fmt: skip


def ingest_celery(broker: str | None = None, *, app: str | None = None, queue: str | None = None,
                  expires_s: float | None = None, batch_size: int = 500, settings: Settings | None = None,
                  stop: threading.Event | None = None) -> IngestStats:  # fmt: skip
    """Ingest until ``stop`` is set (without one: until SIGTERM or Ctrl-C, in the main
    thread). A log or broker that is away at start is waited for. Returns the totals."""
    config = settings or load_settings()
    source = source_config(config, broker=broker, app=app, queue=queue, expires_s=expires_s,
                           prefetch=2 * batch_size)  # fmt: skip
    if stop is None:
        stop = threading.Event()
        install_stop_signals(stop)
    return run_ingest(config, source, stop, batch_size=batch_size)


def run_ingest(settings: Settings, source: EventSourceConfig, stop: threading.Event, *,
               batch_size: int = 500) -> IngestStats:  # fmt: skip
    """The ingester of ``source`` into the ledger of ``settings``, until ``stop`` is set."""
    translate = CeleryEventTranslator().translate
    ingester = _when_log_ready(lambda: build_ingester(settings, source, translate, batch_size=batch_size), stop)
    if ingester is None:
        return IngestStats()
    try:
        return ingester.run(stop)
    finally:
        ingester.close()


def _when_log_ready(build: Callable[[], Ingester], stop: threading.Event) -> Ingester | None:
    """``build()`` once the event log answers (a service manager may start the ingester
    before Kafka); None when stopped first."""
    built: list[Ingester] = []
    backoff = Backoff("event log away at start, retrying", log)
    keep_trying(lambda: built.append(build()), backoff, (EventLogUnavailable, AppendError), stop)
    return built[0] if built else None
