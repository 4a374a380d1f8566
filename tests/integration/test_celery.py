"""``ledger.contrib.celery`` with a real Celery worker (in-process, in-memory broker), on
both backends: what the views show after tasks that succeed, fail, retry and get revoked;
beat's dispatches; an emission failure that must not touch the task."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from celery import Celery, signals, uuid
from celery.contrib.testing.worker import start_worker
from celery.schedules import crontab

from ledger.bootstrap import build_codec, build_event_log, build_ledger, build_queries, build_view_reader
from ledger.contrib.celery import (
    CeleryLedger,
    LedgerScheduler,
    duplicate_firings,
    install,
    schedule_interval,
    task_state,
)
from ledger.contrib.emitting import InFlight
from ledger.domain.statuses import TaskStatus
from ledger.eventlog.base import AppendError
from ledger.projections.store import RunOutcome, ViewReader, ViewWriter
from ledger.sdk import Ledger
from ledger.settings import Settings, load_settings
from tests.celery_helpers import BreakableLog, eventually, history
from tests.streams import project_all

app = Celery("shop", broker="memory://", backend="cache+memory://")
app.conf.beat_scheduler = "ledger.contrib.celery:LedgerScheduler"
app.conf.broker_transport_options = {"polling_interval": 0.01}  # the memory broker polls


@app.task(name="shop.add")
def add(x, y):
    return x + y


@app.task(name="shop.charge", bind=True, max_retries=3)
def charge(self, order_id):
    """The payment gateway is busy twice, then the charge goes through."""
    if self.request.retries < 2:
        raise self.retry(countdown=0.05, exc=ConnectionError("gateway busy"))
    return {"order": order_id, "charged": True}


@app.task(name="shop.fail")
def fail(reason):
    raise ValueError(reason)


@app.task(name="shop.barrier")
def barrier():
    """The solo pool runs one task at a time: once this ran, every earlier task has sent
    its last signal (a result is stored before ``task_success`` is sent)."""
    return True


@pytest.fixture(scope="module")
def worker() -> Iterator[Any]:
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30) as running:
        yield running


@pytest.fixture
def recorder(settings: Settings, worker: Any) -> Iterator[CeleryLedger]:
    ledger = build_ledger(settings)
    installation = install(app, ledger)
    yield installation
    installation.uninstall()
    ledger.close()


def settle(worker: Any) -> None:
    """Every task sent so far has run and sent its signals; then the worker's shutdown
    signal, which flushes what is still in flight to Kafka."""
    assert barrier.delay().get(timeout=10) is True
    signals.worker_shutdown.send(sender=worker)


def test_task_histories_as_the_views_show_them(
    settings: Settings, recorder: CeleryLedger, store: ViewWriter, reader: ViewReader, worker: Any
) -> None:
    ok, failed, charged = add.delay(2, 3), fail.delay("card declined"), charge.delay(42)
    assert ok.get(timeout=10) == 5
    assert charged.get(timeout=10) == {"order": 42, "charged": True}
    with pytest.raises(ValueError, match="card declined"):
        failed.get(timeout=10)
    revoked_id = uuid()  # revoked before the worker receives it; its eta is an hour away
    assert app.control.revoke(revoked_id, reply=True, limit=1, timeout=5)
    eta = datetime.now(UTC) + timedelta(hours=1)
    add.apply_async((1, 1), task_id=revoked_id, eta=eta)
    elsewhere = Celery("other", broker="memory://", set_as_current=False).send_task("other.thing", queue="not-ours")
    settle(worker)
    project_all(settings)

    ids = [ok.id, failed.id, charged.id, revoked_id]
    assert history(store, ids) == {
        ok.id: [(0, "task.pending"), (0, "task.received"), (0, "task.started"), (0, "task.succeeded")],
        failed.id: [(0, "task.pending"), (0, "task.received"), (0, "task.started"), (0, "task.failed")],
        charged.id: [(attempt, kind) for attempt in (0, 1, 2) for kind in (
            "task.pending", "task.received", "task.started", "task.retried" if attempt < 2 else "task.succeeded")],
        revoked_id: [(0, "task.pending"), (0, "task.revoked")],
    }
    rows = store.load_tasks(ids)
    assert (rows[ok.id].status, rows[ok.id].result, rows[ok.id].args, rows[ok.id].name) == (
        TaskStatus.DONE, 5, [2, 3], "shop.add")
    assert rows[ok.id].worker and rows[ok.id].runtime is not None and rows[ok.id].date_pending
    assert (rows[failed.id].status, rows[failed.id].exc_type, rows[failed.id].exc_message) == (
        TaskStatus.FAILURE, "ValueError", "card declined")
    assert "ValueError: card declined" in (rows[failed.id].traceback or "")
    assert (rows[charged.id].status, rows[charged.id].retries) == (TaskStatus.DONE, 2)
    retries = [row for row in store.task_history([charged.id]) if row.type == "task.retried"]
    assert all(json.loads(row.payload)["exc_type"] == "ConnectionError" for row in retries)
    assert rows[charged.id].result == {"order": 42, "charged": True}
    assert rows[revoked_id].status is TaskStatus.REVOKED and rows[revoked_id].eta == eta
    assert reader.task_state(elsewhere.id) is None  # another app's publish is not ours
    assert recorder.ledger.emit_errors == 0


def test_task_state_reads_like_a_result_backend(
    settings: Settings, recorder: CeleryLedger, reader: ViewReader, worker: Any
) -> None:
    ok, failed = add.delay(20, 22), fail.delay("no stock")
    ok.get(timeout=10)
    failed.get(timeout=10, propagate=False)
    settle(worker)
    project_all(settings)
    queries = build_queries(settings, reader)

    done = task_state(ok.id, queries)
    assert (done.status, done.result, done.ready, done.successful, done.name) == ("SUCCESS", 42, True, True, "shop.add")
    assert done.date_done is not None and done.traceback is None
    failure = task_state(failed.id, queries)
    celerys = json.loads(json.dumps(app.backend.prepare_exception(ValueError("no stock"), "json")))
    assert celerys == {"exc_type": "ValueError", "exc_message": ["no stock"], "exc_module": "builtins"}
    assert (failure.status, failure.result) == ("FAILURE", celerys)  # a drop-in reader of Celery's shape
    assert failure.traceback and failure.ready and not failure.successful
    unknown = task_state("never-sent", queries)
    assert (unknown.status, unknown.result, unknown.date_done, unknown.ready) == ("PENDING", None, None, False)


def test_beat_dispatches_are_periodic_runs(
    settings: Settings, recorder: CeleryLedger, reader: ViewReader, worker: Any, tmp_path: Any
) -> None:
    app.conf.beat_schedule = {
        "tick": {"task": "shop.add", "schedule": timedelta(seconds=0.3), "args": (1, 2)},
        "nightly": {"task": "shop.add", "schedule": timedelta(hours=24), "args": (0, 0)},
        "report": {"task": "shop.add", "schedule": crontab(minute=0, hour="9,17"), "args": (9, 17)},
    }
    beat = LedgerScheduler(app=app, schedule_filename=str(tmp_path / "beat-a"))
    while beat.schedule["tick"].total_run_count < 3:  # beat's own loop, three runs of "tick"
        time.sleep(min(max(beat.tick(), 0), 0.05))
    # a second beat process (an overlapping deploy) fires "nightly" in the first one's slot
    other = LedgerScheduler(app=app, schedule_filename=str(tmp_path / "beat-b"))
    for scheduler in (beat, other):
        scheduler.apply_entry(scheduler.schedule["nightly"], producer=scheduler.producer)
        scheduler.close()
    settle(worker)
    project_all(settings)
    runs = reader.periodic_runs()
    for run in runs["tick"] + runs["nightly"]:
        app.AsyncResult(run.task_id).get(timeout=10)
    settle(worker)
    project_all(settings)

    periodic = {p.state.name: p for p in build_queries(settings, reader).periodic_tasks()}
    tick, runs = periodic["tick"], reader.periodic_runs()
    assert (tick.state.task, tick.state.interval_seconds, tick.state.enabled) == ("shop.add", 0.3, True)
    assert tick.state.total_run_count == 3 == len(runs["tick"])
    assert tick.state.last_run_at == runs["tick"][-1].triggered_at
    assert tick.state.last_run_task_id == runs["tick"][-1].task_id
    assert tick.last_run_status is TaskStatus.DONE and tick.last_success_at is not None
    assert duplicate_firings(runs["tick"], tick.state.interval_seconds) == 0
    nightly = periodic["nightly"]
    assert nightly.state.total_run_count == 2 and nightly.last_run_status is TaskStatus.DONE
    assert duplicate_firings(runs["nightly"], nightly.state.interval_seconds) == 1
    report = periodic["report"]  # a crontab: registered with its shortest gap, 09:00 → 17:00
    assert (report.state.interval_seconds, report.state.total_run_count) == (8 * 3600, 0)
    assert not report.due  # registered just now and never run: not due before its first slot
    app.conf.beat_schedule = {}


def test_an_emission_failure_never_touches_the_task(
    settings: Settings, reader: ViewReader, worker: Any
) -> None:
    log = BreakableLog(build_event_log(settings))
    ledger = Ledger(log, build_codec(settings))
    recorder = install(app, ledger)
    try:
        log.broken = True
        lost = add.delay(20, 22)
        assert lost.get(timeout=10) == 42
        eventually(lambda: ledger.emit_errors == 4, what="pending, received, started, succeeded")
        log.broken = False
        kept = add.delay(1, 2)
        assert kept.get(timeout=10) == 3
        settle(worker)
    finally:
        recorder.uninstall()
        ledger.close()
    project_all(settings)
    assert reader.task_state(lost.id) is None
    assert reader.task_state(kept.id).status is TaskStatus.DONE  # type: ignore[union-attr]
    assert ledger.emit_errors == 4


def test_readme_example(settings: Settings, worker: Any) -> None:
    recorder = install(app, build_ledger(settings))  # every task of `app` is recorded from now on

    result = add.delay(2, 3)
    assert result.get(timeout=10) == 5
    recorder.flush()  # workers flush on shutdown; a process that only publishes, before it exits

    settle(worker)  # (test only: the in-process worker has sent its last signal)
    project_all(settings)  # (test only: what `ledger project` does all the time)
    state = task_state(result.id, build_queries(settings))
    assert (state.status, state.result, state.retries) == ("SUCCESS", 5, 0)
    recorder.uninstall()


# -- no worker, no backend ------------------------------------------------------------------
def test_install_is_per_app_and_once(worker: Any, tmp_path: Any) -> None:
    settings = load_settings(backend="embedded", data_dir=tmp_path)
    receivers = len(signals.task_prerun.receivers)
    first = install(app, build_ledger(settings))
    try:
        assert install(app) is first and install(app, first.ledger) is first
        with pytest.raises(ValueError, match="already recorded"):
            install(app, build_ledger(settings))
    finally:
        first.uninstall()
        first.ledger.close()
    assert "send_task" not in app.__dict__ and len(signals.task_prerun.receivers) == receivers


def test_a_protocol_1_publish_is_pending_too(tmp_path: Any) -> None:
    old = Celery("old", broker="memory://", set_as_current=False)
    old.conf.task_protocol = 1  # everything in the body, nothing in the headers
    settings = load_settings(backend="embedded", data_dir=tmp_path)
    recorder = install(old, build_ledger(settings))
    sent = old.send_task("old.report", args=(7,), kwargs={"week": 12}, queue="nobody-listens")
    recorder.uninstall()
    recorder.ledger.close()
    project_all(settings)
    with build_view_reader(settings) as reader:
        row = reader.task_state(sent.id)
    assert row is not None and (row.status, row.name, row.args, row.kwargs) == (
        TaskStatus.PENDING, "old.report", [7], {"week": 12})


def test_without_a_ledger_each_process_builds_its_own(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    configured = Celery("configured", broker="memory://", set_as_current=False)
    configured.conf.ledger_settings = {"backend": "embedded", "data_dir": str(tmp_path)}
    recorder = install(configured)
    parent = recorder.ledger
    monkeypatch.setattr(os, "getpid", lambda: 999_999)  # as in a prefork pool child
    recorder.record("a test event", "w1@host", lambda w: w.pending("t-1", "shop.add"))
    child = recorder.ledger
    recorder.uninstall()
    parent.close()
    child.close()
    assert child is not parent and child.emit_errors == parent.emit_errors == 0
    settings = load_settings(backend="embedded", data_dir=tmp_path)
    project_all(settings)
    with build_view_reader(settings) as reader:
        assert reader.task_state("t-1").worker == "w1@host"  # type: ignore[union-attr]


def test_while_the_log_is_unreachable_events_are_dropped_without_waiting() -> None:
    lost = Celery("lost", broker="memory://", set_as_current=False)
    nowhere = load_settings(backend="kafka+postgres", kafka_bootstrap_servers="127.0.0.1:9", request_timeout_ms=1000)
    recorder = install(lost, settings=nowhere)  # opened on the first event, in each process
    began = time.monotonic()
    lost.send_task("lost.first", queue="nobody-listens")  # waits for the connection time-out
    waited = time.monotonic() - began
    lost.send_task("lost.second", queue="nobody-listens")  # does not try again for a while
    assert time.monotonic() - began - waited < 0.2
    recorder.uninstall()
    assert recorder.emit_errors == 2


def test_a_failure_the_broker_reports_later_is_counted(tmp_path: Any) -> None:
    ledger = build_ledger(load_settings(backend="embedded", data_dir=tmp_path))
    in_flight = InFlight(ledger)

    def refused(timeout: float | None = None) -> Any:
        raise AppendError("1 of 1 records were not acknowledged")

    in_flight.add(SimpleNamespace(done=lambda: False, wait=refused))  # type: ignore[arg-type]
    in_flight.add(SimpleNamespace(done=lambda: True, wait=lambda timeout=None: []))  # type: ignore[arg-type]
    assert ledger.emit_errors == 0 and len(in_flight) == 2  # settled in order, oldest first
    in_flight.settle(timeout=1)
    assert ledger.emit_errors == 1 and len(in_flight) == 0
    ledger.close()


def test_duplicate_firings_are_runs_inside_an_open_slot() -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)

    def runs(*seconds: float) -> list[RunOutcome]:
        return [RunOutcome(t0 + timedelta(seconds=s), f"id-{s}", None, None) for s in seconds]

    assert duplicate_firings(runs(0, 60, 120), 60) == 0
    assert duplicate_firings(runs(0, 59.9, 120.1), 60) == 0  # one beat's jitter
    assert duplicate_firings(runs(0, 20, 60, 80), 60) == 2  # two beats, 20 s apart
    assert duplicate_firings(runs(0, 0.5), None) == 0  # never registered: unknown interval


def test_schedule_intervals() -> None:
    assert schedule_interval(SimpleNamespace(run_every=timedelta(minutes=5))) == 300
    assert schedule_interval(crontab(minute="*/15")) == 900
    assert schedule_interval(crontab(minute=0, hour=3)) == 86_400


def test_importing_ledger_does_not_import_celery() -> None:
    code = "import sys, ledger, ledger.contrib, ledger.bootstrap, ledger.sdk; print('celery' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
