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
from typing import Any, Final

from ledger.bootstrap import build_ingester, build_ledger, build_view_reader
from ledger.consumers.celery_broker import EventSourceConfig
from ledger.consumers.celery_ingest import Ingester, IngestStats
from ledger.consumers.runner import install_stop_signals
from ledger.contrib.celery_app import load_app
from ledger.contrib.celery_events import CeleryEventTranslator
from ledger.contrib.celery_reconcile import ResultBackend, reconcile
from ledger.eventlog.base import AppendError, EventLogUnavailable
from ledger.projections.queries import TaskQueries
from ledger.retry import Backoff, keep_trying
from ledger.settings import Settings, load_settings

__all__ = ["AppBroker", "Reconciler", "app_broker", "app_result_backend", "ingest_celery", "run_ingest",
           "source_config"]

log = logging.getLogger(__name__)
RECONCILE_JOIN_S: Final = 30.0
"""How long a stopping ingester waits for a reconciliation under way (it is idempotent:
one cut short is done again at the next start)."""


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


def app_result_backend(spec: str | None) -> ResultBackend | None:
    """The result backend of the Celery app ``spec``; None without an app, or for an app with
    no ``result_backend``."""
    if spec is None:
        return None
    app = load_app(spec)
    return app.backend if app.conf.result_backend else None


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
    return run_ingest(config, source, stop, batch_size=batch_size, result_backend=app_result_backend(app))


def run_ingest(settings: Settings, source: EventSourceConfig, stop: threading.Event, *,
               batch_size: int = 500, result_backend: ResultBackend | None = None) -> IngestStats:  # fmt: skip
    """The ingester of ``source`` into the ledger of ``settings``, until ``stop`` is set. On
    Redis, with the app's ``result_backend``, each connection also starts a reconciliation
    (``celery_reconcile``): the outcomes published while nobody listened, read from there."""
    translate = CeleryEventTranslator().translate
    ingester = _when_log_ready(lambda: build_ingester(settings, source, translate, batch_size=batch_size), stop)
    if ingester is None:
        return IngestStats()
    reconciler = None
    if source.broker == "redis":
        if result_backend is None:
            log.warning("on Redis, what is published while the ingester is away is lost; with --app and the "
                        "app's result backend, each connection reconciles the unfinished tasks from it")  # fmt: skip
        else:
            reconciler = Reconciler(settings, result_backend)
            ingester.on_connected = reconciler.start
    try:
        return ingester.run(stop)
    finally:
        ingester.close()
        if reconciler is not None:
            reconciler.join(RECONCILE_JOIN_S)


class Reconciler:
    """Reconciliations in a thread of their own (the ingester keeps draining meanwhile: a
    Redis subscriber that falls behind is cut off), one at a time; a connection during one
    asks for another after it, which then sees what that connection's gap lost."""

    def __init__(self, settings: Settings, backend: ResultBackend) -> None:
        self.settings, self.backend = settings, backend
        self._lock, self._again = threading.Lock(), False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self._again = True
                return
            self._thread = threading.Thread(target=self._run, name="ledger-reconcile", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            self._once()
            with self._lock:
                if not self._again:
                    return
                self._again = False

    def _once(self) -> None:
        try:
            reader = build_view_reader(self.settings)
            try:
                with build_ledger(self.settings) as ledger:
                    done = reconcile(self.backend, TaskQueries(reader), ledger)
            finally:
                reader.close()
        except Exception:  # the views or the backend away: the ingest goes on, the next connection retries
            log.exception("reconciliation from the result backend failed")
            return
        log.info("reconciled from the result backend", extra={"checked": done.checked, "recorded": done.recorded})

    def join(self, timeout: float) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)


def _when_log_ready(build: Callable[[], Ingester], stop: threading.Event) -> Ingester | None:
    """``build()`` once the event log answers (a service manager may start the ingester
    before Kafka); None when stopped first."""
    built: list[Ingester] = []
    backoff = Backoff("event log away at start, retrying", log)
    keep_trying(lambda: built.append(build()), backoff, (EventLogUnavailable, AppendError), stop)
    return built[0] if built else None
