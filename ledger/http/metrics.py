"""Prometheus metrics (prometheus-client): what a projector did, and what the views hold.

Two kinds, kept apart on purpose:

- projector counters (events by type, batches, dead letters, batch latency) live in this
  module's process-wide ``PROJECTOR_REGISTRY``: a projector running in the same process feeds
  them through ``record_batch`` or ``ProjectorMetrics`` (its ``on_commit`` hook). Counting
  rows in ``task_meta`` is not the same thing: a task's five events are one row.
- gauges read on scrape (tasks by status, lag per partition, backend up) are computed by
  ``ViewsCollector`` from the same pooled backends the API uses.

Labels are bounded: event type, status, partition, component. Never a task id, a worker,
or a host: each new value would be a new time series, forever.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram as PromHistogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from ledger.consumers.lag import projector_lag
from ledger.consumers.projector import ProjectorStats
from ledger.domain.statuses import TaskStatus
from ledger.http.resources import Backends
from ledger.wire import EVENT_ADAPTER

__all__ = [
    "PROJECTOR_REGISTRY",
    "ProjectorMetrics",
    "ViewsCollector",
    "app_registry",
    "exposition",
    "record_batch",
]

EVENT_TYPES: Final = frozenset(EVENT_ADAPTER.json_schema()["discriminator"]["mapping"])
"""Every event type the wire schema knows: the only values the ``type`` label takes."""

PROJECTOR_REGISTRY: Final = CollectorRegistry(auto_describe=True)
EVENTS: Final = PromCounter(
    "ledger_events_projected", "Events applied to the views, by event type", ["type"], registry=PROJECTOR_REGISTRY
)
BATCHES: Final = PromCounter("ledger_batches", "Batches committed by the projector", registry=PROJECTOR_REGISTRY)
REFUSED: Final = PromCounter(
    "ledger_refused_batches", "Batches refused because another projector moved the offsets", registry=PROJECTOR_REGISTRY
)
DEAD_LETTERS: Final = PromCounter(
    "ledger_dead_letters", "Records sent to the dead-letter topic", registry=PROJECTOR_REGISTRY
)
BATCH_SECONDS: Final = PromHistogram(
    "ledger_batch_duration_seconds",
    "Time to decode, plan and commit one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=PROJECTOR_REGISTRY,
)


def record_batch(delta: ProjectorStats) -> None:
    """Add one batch's (or any interval's) counts: ``delta`` holds increments, not totals."""
    for event_type, count in delta.by_type.items():
        EVENTS.labels(type=event_type if event_type in EVENT_TYPES else "other").inc(count)
    BATCHES.inc(delta.batches)
    REFUSED.inc(delta.refused_batches)
    DEAD_LETTERS.inc(delta.dead_letters)
    if delta.batches:
        BATCH_SECONDS.observe(delta.last_batch_seconds)


class ProjectorMetrics:
    """A ``Projector(on_commit=...)`` hook: the projector reports running totals, this turns
    them into the increments ``record_batch`` takes."""

    def __init__(self) -> None:
        self._seen = ProjectorStats()

    def __call__(self, stats: ProjectorStats) -> None:
        seen = self._seen
        delta = ProjectorStats(
            batches=stats.batches - seen.batches,
            events=stats.events - seen.events,
            dead_letters=stats.dead_letters - seen.dead_letters,
            refused_batches=stats.refused_batches - seen.refused_batches,
            by_type=stats.by_type - seen.by_type,
            last_batch_seconds=stats.last_batch_seconds,
        )
        self._seen = ProjectorStats(
            batches=stats.batches, events=stats.events, dead_letters=stats.dead_letters,
            refused_batches=stats.refused_batches, by_type=Counter(stats.by_type),
        )  # fmt: skip
        record_batch(delta)


class _Projector(Collector):
    """The process-wide projector counters, inside each app's registry."""

    def collect(self) -> Iterable[Metric]:
        return PROJECTOR_REGISTRY.collect()


class ViewsCollector(Collector):
    """Gauges computed on each scrape; a backend that does not answer reports ``up`` 0
    and its gauges are left out rather than failing the whole scrape."""

    def __init__(self, backends: Backends) -> None:
        self.backends = backends

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("ledger_backend_up", "1 when the component answered this scrape", labels=["component"])
        tasks = GaugeMetricFamily("ledger_tasks", "Tasks in the views, by current status", labels=["status"])
        lag = GaugeMetricFamily("ledger_projector_lag", "Events not yet projected, per partition", labels=["partition"])
        log_ok = self._answers(lambda: self.backends.log.end_offsets())
        views_ok = self._answers(lambda: self._views(tasks, lag if log_ok else None))
        up.add_metric(["views"], float(views_ok))
        up.add_metric(["event_log"], float(log_ok))
        yield from (up, tasks, lag)

    def _views(self, tasks: GaugeMetricFamily, lag: GaugeMetricFamily | None) -> None:
        with self.backends.views() as store:
            counts = store.status_counts()
            for status in TaskStatus:
                tasks.add_metric([status.value], counts.get(status, 0))
            if lag is not None:
                for partition, behind in projector_lag(self.backends.log, store).items():
                    lag.add_metric([str(partition)], behind)

    @staticmethod
    def _answers(call: Callable[[], object]) -> bool:
        """The scrape must answer even when a backend does not: ``up`` says which failed."""
        try:
            call()
        except Exception:
            return False
        return True


def app_registry(backends: Backends) -> CollectorRegistry:
    """One registry per app: the shared projector counters plus this app's gauges."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Projector())
    registry.register(ViewsCollector(backends))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
