"""A projector's Prometheus metrics (prometheus-client), served by the projector process.

Only the process that commits batches can count them, so ``ledger project`` serves its own
endpoint (``LEDGER_PROJECTOR_METRICS_PORT``); the HTTP API publishes only what it measures
on each scrape (tasks by status, lag per partition, backends up). prometheus-client's own
HTTP server does it: a daemon thread answering ``GET /metrics`` (any path, in fact) with
this process's registry and nothing else, so the projector needs no web framework.

Labels are bounded: the event type (one of the wire schema's) and histogram buckets.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram as PromHistogram

from ledger.consumers.projector import Projector, ProjectorStats
from ledger.settings import SettingsError
from ledger.wire import EVENT_ADAPTER

__all__ = ["EVENT_TYPES", "MetricsServer", "ProjectorMetrics", "projector_metrics"]

log = logging.getLogger(__name__)

EVENT_TYPES: Final = frozenset(EVENT_ADAPTER.json_schema()["discriminator"]["mapping"])
"""Every event type the wire schema knows: the only values the ``type`` label takes."""

BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ProjectorMetrics:
    """Counters in a registry of their own, fed by a projector's commit listener: the
    projector reports running totals, this adds what changed since the last report."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.events = PromCounter(
            "ledger_events_projected", "Events applied to the views, by event type", ["type"], registry=registry
        )
        self.batches = PromCounter("ledger_batches", "Batches committed by the projector", registry=registry)
        self.refused = PromCounter(
            "ledger_refused_batches", "Batches refused because another projector moved the offsets", registry=registry
        )
        self.dead_letters = PromCounter(
            "ledger_dead_letters", "Records sent to the dead-letter topic", registry=registry
        )
        self.batch_seconds = PromHistogram(
            "ledger_batch_duration_seconds", "Time to decode, plan and commit one batch", buckets=BUCKETS,
            registry=registry,
        )  # fmt: skip
        ProcessCollector(registry=registry)  # the projector's own memory, CPU and open files
        self._seen = ProjectorStats()

    def __call__(self, stats: ProjectorStats) -> None:
        seen = self._seen
        for event_type, count in (stats.by_type - seen.by_type).items():
            self.events.labels(type=event_type if event_type in EVENT_TYPES else "other").inc(count)
        self.refused.inc(stats.refused_batches - seen.refused_batches)
        self.dead_letters.inc(stats.dead_letters - seen.dead_letters)
        if stats.batches > seen.batches:
            self.batches.inc(stats.batches - seen.batches)
            self.batch_seconds.observe(stats.last_batch_seconds)
        self._seen = ProjectorStats(
            batches=stats.batches, events=stats.events, dead_letters=stats.dead_letters,
            refused_batches=stats.refused_batches, by_type=Counter(stats.by_type),
        )  # fmt: skip


class MetricsServer:
    """prometheus-client's HTTP server for one registry; ``close`` stops it (idempotent)."""

    def __init__(self, registry: CollectorRegistry, port: int) -> None:
        try:
            self._server, self._thread = start_http_server(port, addr="0.0.0.0", registry=registry)
        except OSError as exc:
            raise SettingsError(
                f"LEDGER_PROJECTOR_METRICS_PORT: cannot listen on port {port} ({exc.strerror or exc})"
            ) from None
        self._closed = False
        log.info("projector metrics served", extra={"port": port, "path": "/metrics"})

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)


@contextmanager
def projector_metrics(projector: Projector, port: int | None) -> Iterator[None]:
    """While inside, count ``projector``'s commits and serve them on ``port`` (nothing when
    ``port`` is None). All interfaces: the endpoint is meant to be scraped, and it carries
    counts only, never a task id or a payload."""
    if port is None:
        yield
        return
    metrics = ProjectorMetrics()
    server = MetricsServer(metrics.registry, port)
    projector.add_commit_listener(metrics)
    try:
        yield
    finally:
        server.close()
