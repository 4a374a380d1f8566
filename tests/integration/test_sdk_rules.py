"""The emit side's rules against the real logs (embedded SQLite, and Kafka + PostgreSQL):
impossible steps never reach the log, a history can be imported with its own times, ids
and emitters, and a re-delivered event is one event in the views."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ledger.bootstrap import build_event_log, build_ledger
from ledger.domain.aggregates import InvalidTransition
from ledger.domain.statuses import TaskStatus
from ledger.projections.store import ViewReader, ViewWriter
from ledger.settings import Settings
from ledger.tracked import Retry
from tests.streams import project_all


def test_an_impossible_transition_is_refused_and_nothing_reaches_the_log(settings: Settings) -> None:
    ledger = build_ledger(settings)
    ledger.received("t-1", "shop.add")
    ledger.started("t-1", "shop.add")
    ledger.succeeded("t-1", "shop.add", result=5)
    for step in (
        lambda: ledger.succeeded("t-1", "shop.add", result=6),  # succeed twice
        lambda: ledger.retried("t-1", "shop.add"),  # retry a finished task
        lambda: ledger.started("t-1", "shop.add"),
    ):
        with pytest.raises(InvalidTransition, match=r"task 't-1' is finished \(DONE at attempt 0\)"):
            step()
    ledger.revoked("t-2", reason="cancelled")
    with pytest.raises(InvalidTransition, match="REVOKED at attempt 0"):  # start after a revoke
        ledger.started("t-2")
    ledger.close()
    log = build_event_log(settings)
    assert sum(log.end_offsets().values()) == 4
    log.close()


def test_an_imported_history_keeps_its_origin_and_a_redelivery_is_one_event(
    settings: Settings, store: ViewWriter, reader: ViewReader
) -> None:
    t0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    worker = {"host": "vm-7", "pid": 4242, "worker": "celery@vm-7"}
    ledger = build_ledger(settings)
    ledger.pending("old", "etl.load", args=[1], occurred_at=t0, emitter={"host": "web-1", "pid": 10})
    ledger.started("old", "etl.load", occurred_at=t0 + timedelta(seconds=3), emitter=worker)
    ledger.succeeded("old", "etl.load", result="ok", occurred_at=t0 + timedelta(seconds=9), emitter=worker)
    again = build_ledger(settings)  # another process re-sends the same transition: same step, same id
    again.succeeded("old", "etl.load", result="ok", occurred_at=t0 + timedelta(seconds=9), emitter=worker)
    ledger.close()
    again.close()
    project_all(settings)
    row = reader.task_state("old")
    assert row is not None and (row.status, row.worker, row.result) == (TaskStatus.DONE, "celery@vm-7", "ok")
    dates = (row.date_pending, row.date_started, row.date_done)
    seconds = [(moment - t0).total_seconds() for moment in dates if moment]
    assert seconds == [0, 3, 9]
    assert len(store.task_history(["old"])) == 3


def test_a_retry_with_a_countdown_sets_the_rows_eta(
    settings: Settings, store: ViewWriter, reader: ViewReader
) -> None:
    ledger = build_ledger(settings)
    with pytest.raises(Retry), ledger.track("flaky", "shop.charge"):
        raise Retry(countdown=5, exc=ConnectionError("gateway busy"))
    ledger.close()
    project_all(settings)
    (retried,) = [r for r in store.task_history(["flaky"]) if r.type == "task.retried"]
    row = reader.task_state("flaky")
    assert row is not None and row.status is TaskStatus.RETRY
    assert row.eta == retried.occurred_at + timedelta(seconds=5)
