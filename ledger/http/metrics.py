"""The API's Prometheus metrics (prometheus-client): what the views hold, measured on scrape.

Gauges read on each scrape (tasks by status, lag per partition, backend up), computed by
``ViewsCollector`` from the same pooled backends the API uses; the event streams' own
(open streams, log readers, slow streams dropped) by ``StreamsCollector``. The projector's counters
(events, batches, dead letters, batch latency) are not here: ``ledger serve`` never
projects, so they could never move; the projector process serves them itself
(``ledger.consumers.metrics``). Counting rows in ``task_meta`` is not the same thing either:
a task's five events are one row.

Labels are bounded: status, partition, component. Never a task id, a worker, or a host:
each new value would be a new time series, forever.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from ledger.consumers.lag import projector_lag
from ledger.domain.statuses import TaskStatus
from ledger.http.hub import Hub
from ledger.http.resources import Backends

__all__ = ["StreamsCollector", "ViewsCollector", "app_registry", "exposition"]


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


class StreamsCollector(Collector):
    """The event streams this server holds open and the log readers feeding them (one,
    the hub's, plus catch-ups of resumed streams under way)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        stats = self.hub.stats()
        yield GaugeMetricFamily("ledger_sse_streams", "Open /events/stream connections", value=stats.streams)
        yield GaugeMetricFamily(
            "ledger_sse_log_readers", "Readers of the event log open for the event streams", value=stats.readers
        )
        yield CounterMetricFamily(
            "ledger_sse_dropped_streams", "Event streams dropped for being too slow", value=stats.dropped
        )


def app_registry(backends: Backends, hub: Hub) -> CollectorRegistry:
    """One registry per app, holding this app's gauges."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ViewsCollector(backends))
    registry.register(StreamsCollector(hub))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
