"""The zero-change route, end to end: a REAL ``celery worker`` (prefork, 2 processes, ``-E``)
of an app with no ledger code (``tests.apps.plain``), a real result backend (the same
Redis; RPC on RabbitMQ), a ``ledger ingest celery`` process appending what the workers
publish, and the projector: every task is in the views with the status, result, retries
and exception Celery's result backend reports, and its timeline runs PENDING → … → final;
the worker is in the workers view with the tasks it ran.
On RabbitMQ (``--broker``) and on Redis (``--app``: the broker the app's configuration
names), into the embedded ledger and into Kafka + PostgreSQL."""

from __future__ import annotations

import socket
import time
from collections import Counter
from uuid import UUID

import pytest
from celery import chain, group
from celery.result import AsyncResult

from ledger.bootstrap import build_codec, build_event_log, build_queries, build_view_reader
from ledger.contrib.celery_reconcile import SOURCE
from ledger.contrib.celery_results import TaskResult, task_state
from ledger.domain.statuses import TaskStatus
from ledger.projections.timeline import GapKind, build_timeline
from ledger.projections.workers import WorkerQueries
from ledger.settings import Settings
from ledger.wire import decode
from tests.celery_helpers import Fleet, IngesterProcess, celery_fleet, delete_queues, eventually
from tests.faults.processes import environment
from tests.helpers import unique_name
from tests.streams import project_all

READY = (TaskStatus.DONE, TaskStatus.FAILURE, TaskStatus.REVOKED)


@pytest.fixture(params=["rabbitmq", "redis"])
def broker(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


SMALL, LARGE = 19, 500
"""Tasks of the mix: the embedded ledger's runs stay short, Kafka + PostgreSQL take the
issue's 500."""
CANVAS = 10
"""Tasks of the mix that are not a plain success or exception."""


def run_the_mix(fleet: Fleet, size: int = SMALL) -> tuple[list[AsyncResult], set[str]]:
    """``size`` tasks: successes and exceptions (two to one), retries (then success; then
    given up), a soft time limit, a chain, a group and a revoke; waits until Celery's
    backend has each outcome. Returns the results and the ids of the retried tasks."""
    plain = size - CANVAS
    results = [fleet.send("plain.add", i, 10) for i in range(plain - plain // 3)]
    results += [fleet.send("plain.fail", f"no stock of sku {i}") for i in range(plain // 3)]
    retried = [fleet.send("plain.flaky", 1), fleet.send("plain.flaky", 1), fleet.send("plain.flaky", 3)]
    results += [*retried, fleet.send("plain.slow", 2.0)]
    chained = chain(fleet.signature("plain.add", 1, 2), fleet.signature("plain.add", 3)).apply_async()
    grouped = group(fleet.signature("plain.add", i, i) for i in range(3)).apply_async()
    revoked_id = unique_name("revoked")
    assert fleet.client.control.revoke(revoked_id, reply=True, timeout=5), "the worker did not take the revoke"
    results += [chained.parent, chained, *grouped.results, fleet.send("plain.add", 0, 0, task_id=revoked_id)]
    assert len(results) == size
    for result in results:
        result.get(timeout=60, propagate=False)  # (not .state: RPC's result consumer keeps what it drained)
    return results, {r.id for r in retried}


def projected(settings: Settings, ids: list[str]) -> None:
    """Project until every task is finished in the views (its last events may still be on
    their way through the broker and the ingester)."""
    reader = build_view_reader(settings)

    def finished() -> bool:
        project_all(settings)
        return all((row := reader.task_state(i)) is not None and row.status in READY for i in ids)

    try:
        eventually(finished, 60, "every task to be finished in the views")
    finally:
        reader.close()


def assert_same_outcome(ours: TaskResult, theirs: AsyncResult) -> None:
    assert (ours.status, ours.name) == (theirs.state, theirs.name), ours.task_id
    if theirs.state == "SUCCESS":
        assert ours.result == theirs.result
    elif theirs.state == "FAILURE":
        assert isinstance(ours.result, dict)
        assert (ours.result["exc_type"], ours.result["exc_message"]) == (
            type(theirs.result).__name__, list(theirs.result.args))  # fmt: skip
        assert ours.traceback and type(theirs.result).__name__ in ours.traceback


def test_a_fleet_with_no_ledger_code_is_in_the_views_as_its_result_backend_reports(
    settings: Settings, broker: str
) -> None:
    queue = unique_name("ledger.celeryev")
    with celery_fleet(broker) as fleet:
        if broker.startswith("redis"):  # the broker as the app's configuration names it
            ingester = IngesterProcess(environment(settings, LEDGER_TEST_CELERY_BROKER=broker),
                                       "--app", "tests.apps.plain", "--queue", queue)  # fmt: skip
        else:
            ingester = IngesterProcess(environment(settings), "--broker", broker, "--queue", queue)
        try:
            ingester.consuming()
            results, retried = run_the_mix(fleet, SMALL if settings.backend == "embedded" else LARGE)
            projected(settings, [r.id for r in results])
        finally:
            code = ingester.stop()
            if not broker.startswith("redis"):
                delete_queues(broker, [queue])
        assert code == 0, ingester.output
        assert "ledger ingest celery: stopped after" in ingester.output
        queries, reader = build_queries(settings), build_view_reader(settings)
        try:
            for theirs in results:
                ours = task_state(theirs.id, queries)
                assert_same_outcome(ours, theirs)
                assert ours.retries == (theirs.retries or 0), (theirs.id, ours.retries, theirs.retries)
                timeline = build_timeline(reader.task_events(theirs.id))
                assert not timeline.in_progress
                # PENDING is there (task_send_sent_event), maybe late: Celery publishes task-sent
                # after the message, so the worker's task-received may come first
                assert TaskStatus.PENDING in [e.status for e in timeline.entries]
                assert timeline.entries[-1].status_after.value == ours.status.replace("SUCCESS", "DONE")
                if theirs.id not in retried:
                    assert timeline.gaps == [], (theirs.id, timeline.gaps)
            # the worker's own events (worker-online, -heartbeat) became its row in the workers view
            worker = WorkerQueries(reader).worker(f"{fleet.queue}@{socket.gethostname()}")
            assert worker is not None and worker.last_heartbeat is not None and worker.sw_ident == "py-celery"
            assert sum(worker.tasks.values()) == len(results)  # every task ran there
        finally:
            reader.close()


@pytest.mark.parametrize("settings", ["kafka+postgres"], indirect=True)
def test_on_redis_tasks_that_finish_while_the_ingester_is_away_are_reconciled_when_it_returns(
    settings: Settings, redis_url: str
) -> None:
    """Redis keeps nothing for an absent subscriber: the tasks that finish while the ingester
    is stopped (10 s) get their outcome from the result backend when it connects again."""
    env = environment(settings, LEDGER_TEST_CELERY_BROKER=redis_url, LEDGER_TEST_CELERY_BACKEND=redis_url)
    with celery_fleet(redis_url) as fleet:
        ingester = IngesterProcess(env, "--app", "tests.apps.plain")
        try:
            ingester.consuming()
            running = [fleet.send("plain.wait", 4.0) for _ in range(4)]  # 2 at a time: 8 s in all
            reader = build_view_reader(settings)
            try:
                def all_seen_started() -> bool:
                    project_all(settings)
                    rows = [reader.task_state(r.id) for r in running]
                    return sum(row is not None and row.status is TaskStatus.STARTED for row in rows) >= 2
                eventually(all_seen_started, 60, "two of the tasks to be seen started")
            finally:
                reader.close()
        finally:
            assert ingester.stop() == 0, ingester.output
        stopped = time.monotonic()
        for result in running:
            assert result.get(timeout=60) == 4.0  # the second two at least finish while nobody listens
        time.sleep(max(0.0, 10 - (time.monotonic() - stopped)))
        project_all(settings)
        reader = build_view_reader(settings)
        try:  # (the first two may have finished in the moment the ingester took to stop)
            missed = [r for r in running if reader.task_state(r.id).status not in READY]  # type: ignore[union-attr]
        finally:
            reader.close()
        assert len(missed) >= 2, "the tasks that started after the stop should be unfinished in the views"

        back = IngesterProcess(env, "--app", "tests.apps.plain")
        try:
            back.consuming()
            eventually(lambda: "reconciled from the result backend" in back.output, 60, "the reconciliation")
            projected(settings, [r.id for r in missed])
        finally:
            assert back.stop() == 0, back.output
    reader = build_view_reader(settings)
    try:
        for result in missed:
            row = reader.task_state(result.id)
            assert row is not None and (row.status, row.result) == (TaskStatus.DONE, 4.0)
            timeline = build_timeline(reader.task_events(result.id))
            assert timeline.entries[-1].reconciled_from == SOURCE
            assert GapKind.RECONCILED in [g.kind for g in timeline.gaps]
    finally:
        reader.close()


@pytest.mark.parametrize("settings", ["kafka+postgres"], indirect=True)
def test_a_fleet_recorded_by_install_and_by_the_ingester_at_once_is_held_once(
    settings: Settings, rabbitmq_url: str
) -> None:
    """Both routes on the same tasks: the worker of ``tests.apps.installed`` records each
    step itself (``install(app)``, every process) while ``ledger ingest celery`` appends the
    same steps from its ``-E`` events; each step has one id whichever route appended it, so
    the log holds most steps twice and the history each (status, attempt) once."""
    queue = unique_name("ledger.celeryev")
    env = environment(settings)
    ingester = IngesterProcess(env, "--broker", rabbitmq_url, "--queue", queue)
    try:
        ingester.consuming()
        with celery_fleet(rabbitmq_url, "tests.apps.installed", env) as fleet:
            results, _ = run_the_mix(fleet)
            ids = [r.id for r in results]
            projected(settings, ids)
            outcomes = {r.id: (r.state, r.result, r.retries, r.name) for r in results}
        # the worker has stopped (its processes flushed what they recorded): every copy is in the log
    finally:
        assert ingester.stop() == 0, ingester.output
        delete_queues(rabbitmq_url, [queue])
    project_all(settings)
    appended: Counter[UUID] = Counter()
    with build_event_log(settings) as log:
        codec = build_codec(settings)
        for record in log.read():
            event = decode(record, codec)
            if getattr(event, "task_id", None) in outcomes:
                appended[event.event_id] += 1
    queries, reader = build_queries(settings), build_view_reader(settings)
    try:
        for task_id, (state, result, retries, name) in outcomes.items():
            rows = reader.task_events(task_id)
            steps = Counter((row.status, row.attempt) for row in rows)
            assert steps and max(steps.values()) == 1, (task_id, steps)
            assert all(appended[row.event_id] >= 1 for row in rows)
            # the worker's steps came by both routes (the client's publish only from task-sent)
            worker_side = [row for row in rows if row.type != "task.pending"]
            assert worker_side and all(appended[row.event_id] == 2 for row in worker_side), (
                task_id, [(row.type, row.attempt, appended[row.event_id]) for row in rows])  # fmt: skip
            ours = task_state(task_id, queries)
            assert (ours.status, ours.name, ours.retries) == (state, name, retries or 0), task_id
            if state == "SUCCESS":
                assert ours.result == result
            elif state == "FAILURE":
                assert isinstance(ours.result, dict) and ours.result["exc_type"] == type(result).__name__
    finally:
        reader.close()
