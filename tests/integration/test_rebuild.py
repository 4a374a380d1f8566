"""Rebuild: replay from offset 0 into shadow views, verify, swap atomically (both backends;
the live-projector and concurrent-reader cases on the real Kafka + PostgreSQL)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy.exc import DBAPIError

from ledger.bootstrap import (
    build_event_log,
    build_ledger,
    build_rebuild,
    build_swapper,
    build_view_reader,
    build_view_writer,
)
from ledger.consumers import bulk_load
from ledger.consumers.rebuild import Rebuild
from ledger.domain.events import AnyEvent, TaskEvent, TaskExpired, TaskSucceeded
from ledger.eventlog.base import EventLog
from ledger.projections.queries import TaskQueries
from ledger.projections.rebuild import CatchUp, Inspect, RebuildInProgress
from ledger.projections.schema import PRIMARY_KEYS
from ledger.projections.sqlite import SqliteViewWriter
from ledger.projections.sqlite_rebuild import SqliteSwapper
from ledger.projections.store import ViewReader, ViewStoreUnavailable, ViewWriter
from ledger.settings import Settings, load_settings
from tests.cli import ROOT, ledger
from tests.contract.search_contract import EXPECTED as SEARCHES
from tests.contract.search_contract import corpus as search_corpus
from tests.integration.test_projector_group import Member, wait_until_projected
from tests.streams import append_all, assert_views_match_fold, project_all, stream


def dump(store: ViewWriter) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every view table, in primary-key order."""
    return {table: list(store.table_rows(table)[1]) for table in PRIMARY_KEYS}


def test_a_rebuild_from_offset_0_gives_exactly_the_rows_the_live_projector_made(
    settings: Settings, log: EventLog, store: ViewWriter
) -> None:
    events = stream(seed=41, tasks=400, duplicates=25, late=25)  # retries, failures, duplicates, late events
    positions = append_all(log, events)
    project_all(settings)
    before = dump(store)
    report = build_rebuild(settings).run(verify=True)
    assert report.swapped and report.diff is not None and report.diff.clean, report.diff and report.diff.report()
    assert report.events == len(events)
    after = dump(build_view_writer(settings))
    assert after == before  # invariant 1: the log is the truth, the views a fold of it
    assert_views_match_fold(build_view_writer(settings), events, positions)


@pytest.mark.parametrize("held", [bulk_load.MAX_HELD_TASKS, 7], ids=["held-in-memory", "written-out-every-7"])
def test_a_bulk_load_in_small_chunks_gives_the_live_projectors_rows(
    settings: Settings, log: EventLog, store: ViewWriter, monkeypatch: pytest.MonkeyPatch, held: int
) -> None:
    """Chunks of 40 records: tasks, duplicates and late events span chunks, expiries delete
    tasks loaded chunks earlier; with ``held`` 7 the task rows go out every few chunks and
    are read back from the shadow like the projector's."""
    monkeypatch.setattr(bulk_load, "MAX_HELD_TASKS", held)
    events = stream(seed=43, tasks=150, duplicates=30, late=30)
    done = list(dict.fromkeys(e.task_id for e in events if isinstance(e, TaskSucceeded)))[:6]
    later = datetime(2100, 1, 1, tzinfo=UTC)
    expired = [TaskExpired(task_id=t, expired_before=later, occurred_at=later) for t in done]
    append_all(log, [*events, *expired])
    project_all(settings)
    before = dump(store)
    assert not {row[0] for row in before["task_meta"]} & set(done)  # the expiries deleted them
    rebuild = Rebuild(build_swapper(settings, build_view_writer(settings)), build_event_log(settings), batch_size=40)
    report = rebuild.run(verify=True)
    assert report.swapped and report.diff is not None and report.diff.clean, report.diff and report.diff.report()
    assert dump(build_view_writer(settings)) == before


def linked(events: list[AnyEvent]) -> list[AnyEvent]:
    """The stream as a fleet of workflows would log it: tasks under a few roots and groups,
    routed to a few queues, the publish carrying the linkage and the worker the routing."""
    out: list[AnyEvent] = []
    for event in events:
        if isinstance(event, TaskEvent):
            n = zlib.crc32(event.task_id.encode())
            update = ({"root_id": f"root-{n % 7}", "parent_id": f"root-{n % 7}", "group_id": f"g-{n % 11}",
                       "callback_id": f"cb-{n % 11}"} if event.type == "task.pending"
                      else {"queue": f"q{n % 3}", "routing_key": f"q{n % 3}", "exchange": ""})  # fmt: skip
            event = event.model_copy(update=update)
        out.append(event)
    return out


def test_a_rebuild_fills_linkage_routing_and_durations_from_the_log(
    settings: Settings, log: EventLog, store: ViewWriter
) -> None:
    events = linked(stream(seed=43, tasks=150, duplicates=10, late=10))
    positions = append_all(log, events)
    project_all(settings)
    before = dump(store)
    report = build_rebuild(settings).run(verify=True)
    assert report.swapped and report.diff is not None and report.diff.clean, report.diff and report.diff.report()
    rebuilt = build_view_writer(settings)
    assert dump(rebuilt) == before
    assert_views_match_fold(rebuilt, events, positions)
    states = rebuilt.load_tasks({e.task_id for e in events if isinstance(e, TaskEvent)}).values()
    assert {s.queue for s in states} == {"q0", "q1", "q2"}
    assert any(s.root_id and s.group_id and s.callback_id for s in states)
    assert any(s.queue_wait is not None for s in states) and any(s.total_time is not None for s in states)


def test_a_rebuild_answers_every_search_as_the_live_views_did(
    settings: Settings, log: EventLog, store: ViewWriter, reader: ViewReader
) -> None:
    append_all(log, [*search_corpus(), *stream(seed=44, tasks=100, duplicates=5, late=5)])
    project_all(settings)

    def answers(queries: TaskQueries) -> list[list[str]]:
        return [[s.task_id for s in queries.list_tasks(where, limit=1000).items] for where, _ in SEARCHES]

    before = answers(TaskQueries(reader))
    ours = {e.task_id for e in search_corpus() if isinstance(e, TaskEvent)}  # the stream's tasks may match too
    assert [[i for i in ids if i in ours] for ids in before] == [ids for _, ids in SEARCHES]
    report = build_rebuild(settings).run(verify=True)
    assert report.swapped and report.diff is not None and report.diff.clean, report.diff and report.diff.report()
    with build_view_reader(settings) as rebuilt:
        assert answers(TaskQueries(rebuilt)) == before


def test_verify_reports_a_corrupted_live_row_and_dry_run_keeps_the_live_views(
    settings: Settings, log: EventLog, store: ViewWriter, reader: ViewReader
) -> None:
    append_all(log, stream(seed=42, tasks=60, duplicates=0, late=0))
    project_all(settings)
    victim = dump(store)["task_meta"][0][0]
    corrupt(settings, store, str(victim))
    report = build_rebuild(settings).run(verify=True, dry_run=True)
    assert not report.swapped and report.diff is not None and not report.diff.clean
    task_meta = next(t for t in report.diff.tables if t.table == "task_meta")
    assert task_meta.counts == {"only_live": 0, "only_shadow": 0, "differing": 1}
    assert task_meta.differing == [(victim, ["status"])]
    assert f"differs: {victim} (status)" in report.diff.report()
    assert reader.task_state(str(victim)).status.value == "REVOKED"  # type: ignore[union-attr]  # unchanged
    fixed = build_rebuild(settings).run()  # a real rebuild repairs it
    assert fixed.swapped and build_view_reader(settings).task_state(str(victim)).status.value != "REVOKED"  # type: ignore[union-attr]


def corrupt(settings: Settings, store: ViewWriter, task_id: str) -> None:
    if settings.backend == "embedded":
        assert isinstance(store, SqliteViewWriter)
        with closing(sqlite3.connect(store.path)) as conn, conn:
            conn.execute("UPDATE task_meta SET status = 'REVOKED' WHERE task_id = ?", (task_id,))
        return
    conn = psycopg2.connect(settings.postgres_dsn)
    with conn, conn.cursor() as cur:
        cur.execute(
            f'UPDATE "{settings.postgres_schema}".task_meta SET status = %s WHERE task_id = %s', ("REVOKED", task_id)
        )
    conn.close()


def test_only_one_rebuild_runs_at_a_time(settings: Settings, log: EventLog, store: ViewWriter) -> None:
    swapper = build_swapper(settings, store)
    with swapper.lock(), pytest.raises(RebuildInProgress, match="another rebuild"):
        build_rebuild(settings).run()


@pytest.fixture
def pg_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"projector_batch_size": 200, "consumer_poll_timeout_ms": 100})


# the embedded backend runs one process: its rebuild expects the projector stopped
@pytest.mark.parametrize("settings", ["kafka+postgres"], indirect=True)
def test_live_writes_during_a_rebuild_survive_the_swap_and_readers_never_see_a_partial_view(
    pg_settings: Settings, log: EventLog, store: ViewWriter
) -> None:
    events = stream(seed=43, tasks=2500)
    third = len(events) // 3
    positions = append_all(log, events[:third])
    live = Member(pg_settings).start()
    wait_until_projected(store, log.topic, third)
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def reader() -> None:  # counts rows and history in one snapshot, as often as it can
        conn = psycopg2.connect(pg_settings.postgres_dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            while not stop.is_set():
                cur.execute(
                    f'SELECT (SELECT count(*) FROM "{pg_settings.postgres_schema}".task_meta), '
                    f'(SELECT count(*) FROM "{pg_settings.postgres_schema}".task_event)'
                )
                seen.append(cur.fetchone())  # type: ignore[arg-type]
        conn.close()

    def producer() -> None:  # the fleet keeps emitting while the rebuild runs
        for start in range(third, len(events), 200):
            positions.extend(append_all(log, events[start : start + 200]))
            time.sleep(0.02)

    threads = [threading.Thread(target=reader), threading.Thread(target=producer)]
    for thread in threads:
        thread.start()
    appended_before = len(positions)
    report = build_rebuild(pg_settings).run()
    appended_during = len(positions) - appended_before
    threads[1].join(60)
    wait_until_projected(store, log.topic, len(events))
    stop.set()
    threads[0].join(10)
    live.halt()
    assert report.swapped and appended_during > 0  # the fleet really emitted during the rebuild
    assert_views_match_fold(build_view_writer(pg_settings), events, positions)
    assert seen and all(tasks > 0 and history >= tasks for tasks, history in seen)  # never empty or torn
    assert [s[1] for s in seen] == sorted(s[1] for s in seen)  # history only grows, through the swap


# -- the embedded backend: a rebuild and a running `ledger project` never write the same views


class ProjectorProcess:
    """``ledger project`` on the embedded backend in ``data_dir``, its stderr collected."""

    def __init__(self, data_dir: Path) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
        env = {**clean, "PYTHONPATH": str(ROOT), "LEDGER_DATA_DIR": str(data_dir),
               "LEDGER_CONSUMER_POLL_TIMEOUT_MS": "50", "LEDGER_PROJECTOR_BATCH_WAIT_MS": "20"}  # fmt: skip
        self.process = subprocess.Popen([sys.executable, "-m", "ledger", "project"], env=env, text=True,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self._reader.join(10)
        return code


@pytest.fixture
def embedded(tmp_path: Path) -> Settings:
    return load_settings(backend="embedded", data_dir=tmp_path)


@pytest.fixture
def projector(embedded: Settings) -> Iterator[ProjectorProcess]:
    running = ProjectorProcess(embedded.data_dir)
    yield running
    if running.process.poll() is None:
        running.stop()


def emit_done(settings: Settings, task_id: str) -> None:
    with build_ledger(settings) as sdk:
        sdk.succeeded(task_id, "app.x", result=task_id)


def status(settings: Settings, task_id: str) -> str | None:
    try:
        with build_view_reader(settings) as reader:
            state = reader.task_state(task_id)
    except (ViewStoreUnavailable, sqlite3.Error, DBAPIError):
        return None  # not created yet
    return state.status.value if state else None


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def test_an_embedded_rebuild_refuses_while_a_projector_runs_naming_it(
    embedded: Settings, projector: ProjectorProcess
) -> None:
    emit_done(embedded, "t-1")
    wait_until(lambda: status(embedded, "t-1") == "DONE", "t-1 is projected")
    refused = ledger("rebuild", env={"LEDGER_DATA_DIR": str(embedded.data_dir)})
    assert refused.returncode == 1 and refused.stderr.strip().count("\n") == 0, refused.stderr
    assert f"process {projector.process.pid}" in refused.stderr and "stop it" in refused.stderr
    emit_done(embedded, "t-2")  # the projector carries on, against the live views
    wait_until(lambda: status(embedded, "t-2") == "DONE", "t-2 is projected")
    assert projector.stop() == 0
    rebuilt = ledger("rebuild", "--verify", env={"LEDGER_DATA_DIR": str(embedded.data_dir)})
    assert rebuilt.returncode == 0 and "identical" in rebuilt.stdout and "swapped in" in rebuilt.stdout
    assert status(embedded, "t-1") == status(embedded, "t-2") == "DONE"


class PausedSwapper(SqliteSwapper):
    """Holds the rebuild just before its swap until ``resume`` is set."""

    def __init__(self, live: SqliteViewWriter) -> None:
        super().__init__(live)
        self.paused, self.resume = threading.Event(), threading.Event()

    def swap(self, shadow: ViewWriter, catch_up: CatchUp, inspect: Inspect) -> bool:
        self.paused.set()
        assert self.resume.wait(60)
        return super().swap(shadow, catch_up, inspect)


def test_a_projector_that_started_during_a_rebuild_waits_and_then_writes_the_new_views(embedded: Settings) -> None:
    emit_done(embedded, "t-1")
    assert ledger("project", "--until-caught-up", env={"LEDGER_DATA_DIR": str(embedded.data_dir)}).returncode == 0
    live = build_view_writer(embedded)
    assert isinstance(live, SqliteViewWriter)
    swapper = PausedSwapper(live)
    rebuild = Rebuild(swapper, build_event_log(embedded))
    outcome: list[bool] = []
    worker = threading.Thread(target=lambda: outcome.append(rebuild.run().swapped))
    worker.start()
    assert swapper.paused.wait(60)  # the rebuild holds the views, about to swap the file
    running = ProjectorProcess(embedded.data_dir)
    try:
        emit_done(embedded, "t-2")
        wait_until(lambda: any(f"process {os.getpid()}" in line for line in running.lines), "the projector waits")
        swapper.resume.set()
        worker.join(60)
        assert outcome == [True]
        wait_until(lambda: status(embedded, "t-2") == "DONE", "t-2 is projected into the swapped-in views")
        emit_done(embedded, "t-3")  # and it goes on writing those, not the file they replaced
        wait_until(lambda: status(embedded, "t-3") == "DONE", "t-3 is projected")
    finally:
        swapper.resume.set()
        assert running.stop() == 0
    assert status(embedded, "t-1") == "DONE"
