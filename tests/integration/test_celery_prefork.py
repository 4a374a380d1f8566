"""``install(app)`` in a real prefork worker (a ``celery worker -P prefork`` process with a
pool child), on the embedded backend: what only a real pool shows — a hard time limit
reported by the main process without the task's request, and a message over 1 MB."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.bootstrap import build_view_reader
from ledger.domain.statuses import TaskStatus
from ledger.projections.store import ViewReader
from ledger.settings import Settings, load_settings
from tests.streams import project_all

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Any]]:
    """A prefork worker named ``crw@<host>`` recording into an embedded ledger, and the
    app to publish to it (this process records its publishes into the same ledger)."""
    folder = tmp_path_factory.mktemp("prefork")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(PYTHONPATH=str(ROOT), LEDGER_BACKEND="embedded", LEDGER_DATA_DIR=str(folder / "ledger"),
               LEDGER_TEST_BROKER_DIR=str(folder / "broker"))  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.apps.prefork", "worker", "-P", "prefork", "-c", "1",
         "-n", "crw@%h", "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "warning"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if k.startswith("LEDGER_")})
    try:
        from tests.apps.prefork import make_app

        yield load_settings(), make_app(folder / "broker")
    finally:
        os.environ.clear()
        os.environ.update(saved)
        worker.send_signal(signal.SIGTERM)
        try:
            output, _ = worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            output, _ = worker.communicate()
        print(output)  # shown when a test failed


def settled(settings: Settings, task_id: str, *, timeout: float = 60) -> ViewReader:
    """Project until ``task_id`` is finished in the views."""
    store = build_view_reader(settings)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        project_all(settings)
        row = store.task_state(task_id)
        if row is not None and row.status in (TaskStatus.DONE, TaskStatus.FAILURE):
            return store
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} did not finish within {timeout}s")


def test_a_hard_time_limit_keeps_the_worker_that_ran_the_task(fleet: tuple[Settings, Any]) -> None:
    settings, app = fleet
    result = app.send_task("prefork.stall", args=(30,))
    store = settled(settings, result.id)
    row = store.task_state(result.id)
    assert row is not None and row.status is TaskStatus.FAILURE and row.exc_type
    assert "TimeLimitExceeded" in row.exc_type
    assert row.worker == f"crw@{socket.gethostname()}"  # not the bare host
    failures = [h for h in store.task_events(result.id) if h.type == "task.failed"]
    assert len(failures) == 1  # the second report of the same failure is not a second event
    store.close()


def test_args_over_a_megabyte_are_cut_never_the_event(fleet: tuple[Settings, Any]) -> None:
    settings, app = fleet
    blob = "x" * 1_200_000
    result = app.send_task("prefork.measure", args=(blob,))
    store = settled(settings, result.id)
    row = store.task_state(result.id)
    assert row is not None and row.status is TaskStatus.DONE and row.result == len(blob)
    history = store.task_events(result.id)
    assert [h.type for h in history][:2] == ["task.pending", "task.received"]  # the publish is kept
    for entry in history[:2]:
        assert b'"truncated":{"args":' in entry.payload.replace(b" ", b"")
    assert row.date_pending is not None and row.args is None
    store.close()
