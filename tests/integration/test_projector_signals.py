"""``ledger project`` as a process: SIGTERM finishes (or drops) the batch in hand, commits
nothing half-done, and exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ledger.domain.events import TaskEvent
from ledger.domain.fold import fold
from ledger.eventlog.base import EventLog
from ledger.projections.rows import history_events
from ledger.projections.store import ViewWriter
from ledger.settings import Settings
from ledger.wire import decode
from tests.streams import append_all, stream

ROOT = Path(__file__).resolve().parents[2]


def as_environment(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    for name, value in settings.model_dump(mode="json", exclude_none=True).items():
        env[f"LEDGER_{name.upper()}"] = str(value)
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_sigterm_mid_stream_exits_0_with_rows_and_offsets_in_step(
    settings: Settings, log: EventLog, store: ViewWriter
) -> None:
    settings = settings.model_copy(update={"projector_batch_size": 50, "projector_batch_wait_ms": 0})
    events = stream(seed=31, tasks=1500)
    append_all(log, events)
    process = subprocess.Popen([sys.executable, "-m", "ledger", "project"], env=as_environment(settings),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 60
    while sum(store.offsets("views", log.topic).values()) < 200:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, process.stderr.read() if process.stderr else ""
    stored = store.offsets("views", log.topic)
    projected = sum(stored.values())
    assert 200 <= projected < len(events)  # it stopped mid-stream
    # every row is exactly the fold of the history it holds, and the history is exactly
    # the events below the stored offsets: nothing half-done, nothing beyond the offsets
    applied = list(log.read("beginning", stop={p: stored.get(p, 0) for p in range(log.partitions)}))
    applied_ids = set()
    for record in applied:
        event = decode(record)
        if isinstance(event, TaskEvent):
            applied_ids.add(event.event_id)
    task_ids = {e.task_id for e in events if isinstance(e, TaskEvent)}
    history = store.task_history(task_ids)
    assert {h.event_id for h in history} == applied_ids
    by_task: dict[str, list] = {}  # type: ignore[type-arg]
    for event, offset in history_events(history):
        by_task.setdefault(event.task_id, []).append((event, offset))
    assert store.load_tasks(task_ids) == {t: fold(e) for t, e in by_task.items()}
