"""``ledger import celery-events``: a captured stream of Celery's own events becomes the
ledger's history and its workers, once however often it is imported; a bad line is one
error naming it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from celery.events import Event

from ledger.bootstrap import build_view_reader
from ledger.domain.statuses import TaskStatus
from ledger.projections.workers import WorkerQueries
from ledger.settings import load_settings
from tests.cli import ledger

T0 = 1_780_000_000.0
WORKER = {"hostname": "celery@vm-3", "pid": 4242}


def captured(path: Path) -> Path:
    events = [Event("worker-heartbeat", timestamp=T0, freq=2.0, processed=0, active=0, **WORKER),
              Event("task-progress", uuid="t-0", timestamp=T0, **WORKER)]  # an app's own event: skipped
    for i in range(30):
        task = f"t-{i}"
        events += [
            Event("task-sent", uuid=task, name="shop.add", args=f"({i}, 1)", kwargs="{}", retries=0, timestamp=T0 + i,
                  hostname="web@api-1", pid=10),
            Event("task-received", uuid=task, name="shop.add", args=f"({i}, 1)", kwargs="{}", retries=0,
                  timestamp=T0 + i + 0.1, **WORKER),
            Event("task-started", uuid=task, timestamp=T0 + i + 0.2, **WORKER),
            Event("task-succeeded", uuid=task, result=str(i + 1), runtime=0.01, timestamp=T0 + i + 0.3, **WORKER),
        ]  # fmt: skip
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return path


def test_a_captured_celery_event_stream_imports_once_however_often(tmp_path: Path) -> None:
    env = {"LEDGER_DATA_DIR": str(tmp_path / "ledger")}
    source = captured(tmp_path / "events.jsonl")
    first = ledger("import", "celery-events", str(source), env=env)
    assert first.returncode == 0, first.stderr
    assert "imported 121 events (1 lines were neither task transitions nor worker events)" in first.stdout
    assert ledger("import", "celery-events", str(source), env=env).returncode == 0  # again: held once
    assert ledger("project", "--until-caught-up", env=env).returncode == 0
    store = build_view_reader(load_settings(backend="embedded", data_dir=tmp_path / "ledger"))
    row = store.task_state("t-7")
    assert row is not None and (row.status, row.result, row.args, row.worker) == (TaskStatus.DONE, 8, [7, 1],
                                                                                    "celery@vm-3")  # fmt: skip
    assert sum(len(store.task_events(f"t-{i}")) for i in range(30)) == 120
    (worker,) = WorkerQueries(store, now=lambda: datetime.fromtimestamp(T0 + 7, UTC)).workers()
    assert (worker.hostname, worker.pid, worker.processed, worker.freq) == ("celery@vm-3", 4242, 0, 2.0)
    assert (worker.last_heartbeat, worker.status) == (datetime.fromtimestamp(T0, UTC), "offline")  # 3 beats missed
    store.close()


def test_a_bad_line_is_one_error_naming_it(tmp_path: Path) -> None:
    env = {"LEDGER_DATA_DIR": str(tmp_path / "ledger")}
    source = tmp_path / "bad.jsonl"
    source.write_text(json.dumps(Event("task-started", uuid="ok", timestamp=T0)) + "\n{not json\n")
    done = ledger("import", "celery-events", str(source), env=env)
    assert done.returncode == 1 and done.stderr.strip().splitlines()[-1] == "error: line 2: not JSON"
    missing = ledger("import", "celery-events", str(tmp_path / "nope.jsonl"), env=env)
    assert missing.returncode == 1 and "PATH:" in missing.stderr and "Traceback" not in missing.stderr
