"""Row "in-memory peer": Celery's own ``celery.events.state.State`` (what Flower keeps)
applying the same events in memory, as Celery event dicts.

Translation (not timed): task.pending → task-sent, received → task-received, started →
task-started, succeeded → task-succeeded, failed → task-failed, retried → task-retried,
revoked → task-revoked; periodic events have no Celery counterpart and are skipped.
``max_tasks_in_memory`` is Flower's default (100,000), so its LRU bound works as in Flower.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bench.data import RawRecord
from bench.stats import rate
from ledger.progress import Progress

CELERY_TYPES = {
    "task.pending": "task-sent", "task.received": "task-received", "task.started": "task-started",
    "task.succeeded": "task-succeeded", "task.failed": "task-failed", "task.retried": "task-retried",
    "task.revoked": "task-revoked",
}  # fmt: skip
FLOWER_MAX_TASKS = 100_000
CHUNK = 50_000


def celery_event(data: dict[str, Any], clock: int) -> dict[str, Any] | None:
    """One ledger event (its JSON, parsed) as the dict a Celery worker would send."""
    kind = CELERY_TYPES.get(data["type"])
    if kind is None:
        return None
    emitter = data["emitter"]
    when = datetime.fromisoformat(data["occurred_at"]).timestamp()
    event = {"type": kind, "uuid": data["task_id"], "hostname": emitter.get("worker") or emitter["host"],
             "pid": emitter["pid"], "timestamp": when, "local_received": when, "clock": clock,
             "retries": data.get("attempt", 0)}  # fmt: skip
    if kind in ("task-sent", "task-received"):
        event.update(name=data.get("task_name"), args=repr(data.get("args")), kwargs=repr(data.get("kwargs")),
                     eta=data.get("eta"))  # fmt: skip
    elif kind == "task-succeeded":
        event.update(result=repr(data.get("result")), runtime=data.get("runtime"))
    elif kind in ("task-failed", "task-retried"):
        event.update(exception=f"{data.get('exc_type')}({data.get('exc_message')!r})", traceback=data.get("traceback"))
    elif kind == "task-revoked":
        event.update(terminated=data.get("terminated", False), signum=None, expired=False)
    return event


def measure_celery_state(records: Sequence[RawRecord]) -> dict[str, float]:
    """Events per second through ``State.event``, translated chunk by chunk (untimed)."""
    from celery.events.state import State

    state = State(max_tasks_in_memory=FLOWER_MAX_TASKS)
    progress = Progress("celery")
    progress.start(len(records))
    applied, seconds = 0, 0.0
    try:
        for first in range(0, len(records), CHUNK):
            chunk = [celery_event(json.loads(value), first + i) for i, (_, value, _) in
                     enumerate(records[first : first + CHUNK])]  # fmt: skip
            events = [e for e in chunk if e is not None]
            began = time.perf_counter()
            for event in events:
                state.event(event)
            seconds += time.perf_counter() - began
            applied += len(events)
            progress.update(first + len(chunk))
    finally:
        progress.finish()
    return {"events_per_s": rate(applied, seconds), "seconds": round(seconds, 3), "events": applied}
