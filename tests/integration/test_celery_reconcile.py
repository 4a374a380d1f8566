"""``ledger reconcile celery``: tasks the ledger saw sent (PENDING) whose later events were
lost — Celery's events on Redis are PUBLISHed, gone while no ingester listens — finish in
a REAL prefork worker (``tests.apps.plain``: no ledger code) with a Redis result backend;
reconciling appends the outcome the backend reports, marked as such, on both backends.
The status, result and exception in the views are the backend's, the timeline says the
steps before were not seen, and the real event heard later is held once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from ledger.bootstrap import build_ledger, build_view_reader
from ledger.contrib.celery_events import CeleryEventTranslator
from ledger.contrib.celery_reconcile import SOURCE
from ledger.domain.statuses import TaskStatus
from ledger.http import create_app
from ledger.projections.timeline import GapKind, build_timeline
from ledger.settings import Settings
from tests.browser.conftest import settings_env
from tests.celery_helpers import Fleet, celery_fleet
from tests.cli import ledger
from tests.integration.conftest import settings
from tests.streams import project_all

__all__ = ["settings"]

@pytest.fixture(scope="module")
def fleet(redis_url: str) -> Iterator[Fleet]:
    """A real prefork worker of ``tests.apps.plain`` on a queue of its own, Redis its broker
    and result backend, and a client of both."""
    with celery_fleet(redis_url) as running:
        yield running


def test_lost_outcomes_are_read_from_the_result_backend_and_marked(settings: Settings, fleet: Fleet) -> None:
    client, queue = fleet.client, fleet.queue
    run = uuid.uuid4().hex[:8]
    adds = {f"{run}-add-{i}": (i, 10) for i in range(4)}
    fails = {f"{run}-fail-{i}": f"no stock of sku {i}" for i in range(2)}
    revoked, never_run = f"{run}-revoked", f"{run}-never-run"
    with build_ledger(settings) as sent:  # what an ingester heard before it stopped: each task sent
        for task_id in adds:
            sent.pending(task_id, "plain.add")
        for task_id in fails:
            sent.pending(task_id, "plain.fail")
        sent.pending(revoked, "plain.add")
        sent.pending(never_run, "plain.add")
    assert client.control.revoke(revoked, reply=True, timeout=5), "the worker did not take the revoke"
    for task_id, args in adds.items():
        client.send_task("plain.add", args=args, task_id=task_id, queue=queue)
    for task_id, message in fails.items():
        client.send_task("plain.fail", args=(message,), task_id=task_id, queue=queue)
    client.send_task("plain.add", args=(1, 1), task_id=revoked, queue=queue)
    client.send_task("plain.add", args=(1, 1), task_id=never_run, queue=f"{queue}-nobody")
    for task_id in [*adds, *fails]:
        client.AsyncResult(task_id).get(timeout=60, propagate=False)
    deadline = time.monotonic() + 60
    while client.AsyncResult(revoked).state != "REVOKED":
        assert time.monotonic() < deadline, "the worker never recorded the revoked task"
        time.sleep(0.05)
    project_all(settings)

    env = settings_env(settings, LEDGER_TEST_CELERY_BACKEND=client.conf.result_backend)
    done = ledger("reconcile", "celery", "--app", "tests.apps.plain", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "checked 8 unfinished tasks, recorded 7 outcomes"
    project_all(settings)

    reader = build_view_reader(settings)
    try:
        for task_id, (x, y) in adds.items():
            row = reader.task_state(task_id)
            assert row is not None and (row.status, row.result) == (TaskStatus.DONE, x + y)
            assert row.result == client.AsyncResult(task_id).result
        for task_id, message in fails.items():
            row = reader.task_state(task_id)
            assert row is not None and (row.status, row.exc_type, row.exc_message) == (
                TaskStatus.FAILURE, "ValueError", message)  # fmt: skip
            assert row.traceback and "ValueError" in row.traceback
        row = reader.task_state(revoked)
        assert row is not None and row.status is TaskStatus.REVOKED
        row = reader.task_state(never_run)
        assert row is not None and row.status is TaskStatus.PENDING  # the backend knows nothing of it
        timeline = build_timeline(reader.task_events(next(iter(adds))))
        assert [e.reconciled_from for e in timeline.entries] == [None, SOURCE]
        assert [g.kind for g in timeline.gaps] == [GapKind.RECONCILED]
    finally:
        reader.close()
    with TestClient(create_app(settings)) as http:  # the API and the task page say it too
        history = http.get(f"/tasks/{next(iter(fails))}/history").json()
        assert [e["reconciled_from"] for e in history["entries"]] == [None, SOURCE]
        assert [g["kind"] for g in history["gaps"]] == ["reconciled"]
        page = http.get(f"/ui/tasks/{next(iter(fails))}").text
        assert 'title="read from the celery result backend: not seen happen">reconciled</span>' in page

    again = ledger("reconcile", "celery", "--app", "tests.apps.plain", env=env)
    assert again.stdout.strip() == "checked 1 unfinished tasks, recorded 0 outcomes", again.stderr

    heard = CeleryEventTranslator().translate({"type": "task-succeeded", "uuid": next(iter(adds)), "result": "10",
                                               "timestamp": time.time(), "hostname": "celery@late"})  # fmt: skip
    assert heard is not None
    with build_ledger(settings) as late:  # a second ingester heard the real event after all
        late.emit(heard)
    project_all(settings)
    reader = build_view_reader(settings)
    try:
        history = reader.task_events(next(iter(adds)))
        assert [r.type for r in history] == ["task.pending", "task.succeeded"]  # held once
    finally:
        reader.close()


def test_an_app_without_a_result_backend_is_refused_in_one_line(settings: Settings) -> None:
    env = settings_env(settings)
    done = ledger("reconcile", "celery", "--app", "tests.apps.nowhere", env=env)
    assert done.returncode == 1 and done.stderr.startswith("error: --app: cannot load the Celery application")
    assert done.stderr.count("\n") == 1
