"""Rebuild: replay from offset 0 into shadow views, verify, swap atomically (both backends;
the live-projector and concurrent-reader cases on the real Kafka + PostgreSQL)."""

from __future__ import annotations

import threading
import time

import psycopg2
import pytest

from ledger.bootstrap import build_rebuild, build_swapper, build_view_store
from ledger.eventlog.base import EventLog
from ledger.projections.diff import TABLES
from ledger.projections.rebuild import RebuildInProgress
from ledger.projections.store import ViewStore
from ledger.settings import Settings
from tests.integration.test_projector_group import Member, wait_until_projected
from tests.streams import append_all, assert_views_match_fold, project_all, stream


def dump(settings: Settings, store: ViewStore) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every view table, in primary-key order."""
    swapper = build_swapper(settings, store)
    return {table: list(swapper.rows(store, table)[1]) for table in TABLES}


def test_a_rebuild_from_offset_0_gives_exactly_the_rows_the_live_projector_made(
    settings: Settings, log: EventLog, store: ViewStore
) -> None:
    events = stream(seed=41, tasks=400, duplicates=25, late=25)  # retries, failures, duplicates, late events
    positions = append_all(log, events)
    project_all(settings)
    before = dump(settings, store)
    report = build_rebuild(settings).run(verify=True)
    assert report.swapped and report.diff is not None and report.diff.clean, report.diff and report.diff.report()
    assert report.events == len(events)
    after = dump(settings, build_view_store(settings))
    assert after == before  # invariant 1: the log is the truth, the views a fold of it
    assert_views_match_fold(build_view_store(settings), events, positions)


def test_verify_reports_a_corrupted_live_row_and_dry_run_keeps_the_live_views(
    settings: Settings, log: EventLog, store: ViewStore
) -> None:
    append_all(log, stream(seed=42, tasks=60, duplicates=0, late=0))
    project_all(settings)
    victim = dump(settings, store)["task_meta"][0][0]
    corrupt(settings, store, str(victim))
    report = build_rebuild(settings).run(verify=True, dry_run=True)
    assert not report.swapped and report.diff is not None and not report.diff.clean
    task_meta = next(t for t in report.diff.tables if t.table == "task_meta")
    assert task_meta.counts == {"only_live": 0, "only_shadow": 0, "differing": 1}
    assert task_meta.differing == [(victim, ["status"])]
    assert f"differs: {victim} (status)" in report.diff.report()
    assert store.get_task(str(victim)).status.value == "REVOKED"  # type: ignore[union-attr]  # unchanged
    fixed = build_rebuild(settings).run()  # a real rebuild repairs it
    assert fixed.swapped and build_view_store(settings).get_task(str(victim)).status.value != "REVOKED"  # type: ignore[union-attr]


def corrupt(settings: Settings, store: ViewStore, task_id: str) -> None:
    if settings.backend == "embedded":
        store.conn.execute("UPDATE task_meta SET status = 'REVOKED' WHERE task_id = ?", (task_id,))  # type: ignore[attr-defined]
        return
    conn = psycopg2.connect(settings.postgres_dsn)
    with conn, conn.cursor() as cur:
        cur.execute(
            f'UPDATE "{settings.postgres_schema}".task_meta SET status = %s WHERE task_id = %s', ("REVOKED", task_id)
        )
    conn.close()


def test_only_one_rebuild_runs_at_a_time(settings: Settings, log: EventLog, store: ViewStore) -> None:
    swapper = build_swapper(settings, store)
    with swapper.lock(), pytest.raises(RebuildInProgress, match="another rebuild"):
        build_rebuild(settings).run()


@pytest.fixture
def pg_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"projector_batch_size": 200, "consumer_poll_timeout_ms": 100})


# the embedded backend runs one process: its rebuild expects the projector stopped
@pytest.mark.parametrize("settings", ["kafka+postgres"], indirect=True)
def test_live_writes_during_a_rebuild_survive_the_swap_and_readers_never_see_a_partial_view(
    pg_settings: Settings, log: EventLog, store: ViewStore
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
    assert_views_match_fold(build_view_store(pg_settings), events, positions)
    assert seen and all(tasks > 0 and history >= tasks for tasks, history in seen)  # never empty or torn
    assert [s[1] for s in seen] == sorted(s[1] for s in seen)  # history only grows, through the swap
