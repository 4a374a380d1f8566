"""Row "latency": emit → visible in ``task_meta``, at a fixed rate, with a live projector.

Events are emitted on a fixed schedule (``rate`` a second, in 10 ms ticks, each tick one
``emit_many`` call that waits for Kafka's acknowledgement); an event's latency runs from
its scheduled time (so a slow emit is not hidden) until a watcher sees its task's row
carry that event, or a later one of the same task, as ``last_event_id``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg2
from psycopg2 import sql

from bench.children import Child
from bench.data import live_events
from bench.runctx import BenchRun
from bench.stats import summary_ms
from ledger.bootstrap import build_ledger
from ledger.domain.events import TaskEvent

TICK_S = 0.01
WATCH_EVERY_S = 0.002
DRAIN_S = 15.0


class Watcher(threading.Thread):
    """Polls the rows of tasks with events not yet visible; records each event's latency."""

    def __init__(self, run: BenchRun) -> None:
        super().__init__(daemon=True)
        self.run_ctx, self.lock = run, threading.Lock()
        self.emitted: dict[str, list[tuple[str, float]]] = {}  # task → [(event id, scheduled)]
        self.visible: dict[str, int] = {}  # task → how many of its events are visible
        self.waiting: set[str] = set()  # tasks with events not visible yet
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def add(self, task_id: str, event_id: str, scheduled: float) -> None:
        with self.lock:
            self.emitted.setdefault(task_id, []).append((event_id, scheduled))
            self.waiting.add(task_id)

    def pending(self) -> list[str]:
        with self.lock:
            return list(self.waiting)

    def run(self) -> None:
        conn = psycopg2.connect(self.run_ctx.dsn)
        conn.autocommit = True
        query = sql.SQL("SELECT task_id, last_event_id::text FROM {} WHERE task_id = ANY(%s)").format(
            sql.Identifier(self.run_ctx.schema, "task_meta")
        )
        try:
            with conn.cursor() as cur:
                while not self.stop.is_set():
                    tasks = self.pending()
                    if tasks:
                        cur.execute(query, (tasks,))
                        self._seen(cur.fetchall(), time.perf_counter())
                    time.sleep(WATCH_EVERY_S)
        finally:
            conn.close()

    def _seen(self, rows: list[tuple[str, str]], now: float) -> None:
        with self.lock:
            for task_id, last_event_id in rows:
                events = self.emitted[task_id]
                ids = [event_id for event_id, _ in events]
                if last_event_id not in ids:
                    continue
                upto, done = ids.index(last_event_id) + 1, self.visible.get(task_id, 0)
                self.latencies += [now - scheduled for _, scheduled in events[done:upto]]
                self.visible[task_id] = max(done, upto)
                if self.visible[task_id] == len(events):
                    self.waiting.discard(task_id)


def measure_latency(run: BenchRun, rate_per_s: int, seconds: float, batch_wait_ms: int | None = None,
                    seed: int = 4242) -> dict[str, Any]:  # fmt: skip
    """Start a live projector (caught up first; ``batch_wait_ms`` overrides its batch fill
    wait), emit at ``rate_per_s`` for ``seconds``."""
    count = max(1, int(rate_per_s * seconds))
    events = [e for e in live_events(count, seed=seed) if isinstance(e, TaskEvent)]
    extra = {} if batch_wait_ms is None else {"LEDGER_PROJECTOR_BATCH_WAIT_MS": str(batch_wait_ms)}
    wait = run.settings.projector_batch_wait_ms if batch_wait_ms is None else batch_wait_ms
    child = Child(run, "follow", 0, f"latency (batch wait {wait} ms)", env=extra)
    watcher = Watcher(run)
    try:
        lines = child.lines()
        child.wait_ready(lines)
        watcher.start()
        _emit_at_rate(run, events, rate_per_s, watcher)
        deadline = time.monotonic() + DRAIN_S
        while len(watcher.latencies) < len(events) and time.monotonic() < deadline:
            time.sleep(0.05)
        child.terminate()
        for _ in lines:
            pass
        child.finish()
    finally:
        watcher.stop.set()
        child.kill()
    return {"rate_per_s": rate_per_s, "batch_wait_ms": wait, "events": len(events), "seen": len(watcher.latencies),
            **summary_ms(watcher.latencies)}  # fmt: skip


def _emit_at_rate(run: BenchRun, events: list[TaskEvent], rate_per_s: int, watcher: Watcher) -> None:
    ledger = build_ledger(run.settings)
    try:
        ledger.emit_many(live_events(1, seed=1))  # warm-up: connects the producer, not measured
        started, sent = time.perf_counter(), 0
        while sent < len(events):
            due = min(len(events), int((time.perf_counter() - started) * rate_per_s) + 1)
            batch = events[sent:due]
            for offset, event in enumerate(batch, start=sent):
                watcher.add(event.task_id, str(event.event_id), started + offset / rate_per_s)
            if batch:
                ledger.emit_many(batch)
            sent = due
            time.sleep(max(0.0, started + sent / rate_per_s - time.perf_counter(), TICK_S / 2))
    finally:
        ledger.close()
