"""The failure-group queries (``ViewReader.failure_counts`` / ``failure_details``, through
``FailureQueries``): every reader answers them alike, PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
import sqlalchemy as sa

from ledger.domain.events import AnyEvent, FailureGroupReopened, FailureGroupResolved, TaskFailed, TaskPending
from ledger.domain.failures import fingerprint
from ledger.projections.failures import FailureQueries
from ledger.projections.sqltypes import UtcTimestamp, Uuid
from ledger.projections.store import ViewReader, ViewWriter
from tests.contract.viewstore_contract import ViewsContract, project

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SYNC = fingerprint("app.sync", "KeyError", "order 1 not found")
CHARGE = fingerprint("app.charge", "TimeoutError", "no reply from 'x' after 1s")


def failure(task_id: str, minute: float, *, name: str = "app.sync", exc_type: str = "KeyError",
            message: str | None = None) -> TaskFailed:  # fmt: skip
    n = int(minute * 1000)
    return TaskFailed(task_id=task_id, task_name=name, exc_type=exc_type, occurred_at=T0 + timedelta(minutes=minute),
                      exc_message=message if message is not None else f"order {n} not found")  # fmt: skip


def resolved(group: str, minute: float, event: int = 1) -> FailureGroupResolved:
    return FailureGroupResolved(fingerprint=group, resolved_by="ops", occurred_at=T0 + timedelta(minutes=minute),
                                event_id=UUID(int=event))  # fmt: skip


def reopened(group: str, minute: float, event: int = 101) -> FailureGroupReopened:
    return FailureGroupReopened(fingerprint=group, reopened_by="dev", occurred_at=T0 + timedelta(minutes=minute),
                                event_id=UUID(int=event))  # fmt: skip


def history() -> list[AnyEvent]:
    """app.sync fails 6 times (5 tasks, one of them twice) over an hour; app.charge 3 times."""
    sync = [failure(f"s-{i}", minute) for i, minute in enumerate((1, 10, 20, 30, 59))]
    sync.append(failure("s-2", 40))  # the same id run again, failing again
    charge = [failure(f"c-{i}", 5 + i, name="app.charge", exc_type="TimeoutError",
                      message=f"no reply from 'host-{i}.example' after {i + 2}s") for i in range(3)]  # fmt: skip
    return [TaskPending(task_id="s-0", task_name="app.sync", occurred_at=T0), *sync, *charge]


class FailureGroupsContract(ViewsContract):
    def queries(self, reader: ViewReader) -> FailureQueries:
        return FailureQueries(reader, now=lambda: T0 + timedelta(hours=1))

    def test_failures_group_by_masked_cause(self, store: ViewWriter, reader: ViewReader) -> None:
        project(store, history())
        sync, charge = self.queries(reader).groups()
        assert (sync.fingerprint, charge.fingerprint) == (SYNC, CHARGE)  # the most recently failing first
        assert (sync.task_name, sync.exc_type, sync.message) == ("app.sync", "KeyError", "order <n> not found")
        assert (sync.count, sync.tasks) == (6, 5)
        assert (sync.first_seen, sync.last_seen) == (T0 + timedelta(minutes=1), T0 + timedelta(minutes=59))
        assert sync.examples == ["s-4", "s-2", "s-3", "s-1", "s-0"]  # newest first, each task once
        assert (charge.count, charge.tasks, charge.message) == (3, 3, "no reply from '<str>' after <n>s")
        assert sync.status == charge.status == "open" and sync.resolved_at is None

    def test_the_trend_counts_failures_per_bucket_of_the_window(self, store: ViewWriter, reader: ViewReader) -> None:
        project(store, history())
        (sync, charge) = self.queries(reader).groups(since=T0, until=T0 + timedelta(hours=1), buckets=6)
        assert sync.trend == [1, 1, 1, 1, 1, 1]  # minutes 1, 10, 20, 30, 40, 59 in 10-minute buckets
        assert charge.trend == [3, 0, 0, 0, 0, 0]
        assert (sync.trend_start, sync.bucket_seconds) == (T0, 600.0)
        (sync,) = self.queries(reader).groups(since=T0, until=T0 + timedelta(hours=1), buckets=2, name="app.sync")
        assert sync.trend == [3, 3]

    def test_window_and_name_filter_the_failures(self, store: ViewWriter, reader: ViewReader) -> None:
        project(store, history())
        queries = self.queries(reader)
        (sync,) = queries.groups(since=T0 + timedelta(minutes=15), until=T0 + timedelta(minutes=45))
        assert (sync.count, sync.tasks, sync.examples) == (3, 2, ["s-2", "s-3"])
        (charge,) = queries.groups(name="app.charge")
        assert charge.fingerprint == CHARGE
        assert queries.groups(name="app.other") == []
        assert [g.fingerprint for g in queries.groups(limit=1)] == [SYNC]

    def test_one_group_by_fingerprint(self, store: ViewWriter, reader: ViewReader) -> None:
        project(store, history())
        queries = self.queries(reader)
        group = queries.group(CHARGE)
        assert group is not None and group.count == 3 and group.examples == ["c-2", "c-1", "c-0"]
        assert queries.group("0" * 16) is None
        assert queries.group(SYNC, since=T0 + timedelta(hours=2)) is None
        with pytest.raises(ValueError, match=r"^fingerprint: must be 16 lowercase hex digits"):
            queries.group("nope")
        with pytest.raises(ValueError, match=r"^until: must be after since"):
            queries.groups(since=T0, until=T0)

    def test_a_resolved_group_reopens_when_it_fails_again(self, store: ViewWriter, reader: ViewReader) -> None:
        project(store, history())
        project(store, [resolved(SYNC, 60)])
        sync = self.queries(reader).group(SYNC)
        assert sync is not None and sync.status == "resolved"
        assert (sync.resolved_at, sync.resolved_by) == (T0 + timedelta(minutes=60), "ops")
        assert self.queries(reader).group(CHARGE).status == "open"  # type: ignore[union-attr]
        project(store, [failure("s-9", 61)])
        sync = self.queries(reader).group(SYNC)
        assert sync is not None and sync.status == "open" and sync.resolved_at == T0 + timedelta(minutes=60)
        # a recurrence outside the window asked for still reopens it
        earlier = self.queries(reader).group(SYNC, until=T0 + timedelta(minutes=60))
        assert earlier is not None and earlier.status == "open"
        project(store, [resolved(SYNC, 62, event=2)])
        assert self.queries(reader).group(SYNC).status == "resolved"  # type: ignore[union-attr]

    def test_the_latest_resolution_counts_whatever_order_they_are_read_in(
        self, store: ViewWriter, reader: ViewReader
    ) -> None:
        project(store, history())
        project(store, [resolved(SYNC, 70, event=2), resolved(SYNC, 60, event=1)])
        project(store, [resolved(SYNC, 60, event=1)])  # a duplicate append of the older one, read again
        sync = self.queries(reader).group(SYNC)
        assert sync is not None and sync.resolved_at == T0 + timedelta(minutes=70)

    def test_an_operator_reopens_a_resolved_group_and_may_resolve_it_again(
        self, store: ViewWriter, reader: ViewReader
    ) -> None:
        project(store, history())
        project(store, [resolved(SYNC, 60), reopened(SYNC, 65)])
        sync = self.queries(reader).group(SYNC)
        assert sync is not None and sync.status == "open"  # no failure since the resolution: the reopen did it
        assert (sync.resolved_at, sync.resolved_by) == (T0 + timedelta(minutes=60), "ops")  # kept on record
        assert (sync.reopened_at, sync.reopened_by) == (T0 + timedelta(minutes=65), "dev")
        project(store, [resolved(SYNC, 66, event=2)])
        assert self.queries(reader).group(SYNC).status == "resolved"  # type: ignore[union-attr]
        project(store, [reopened(SYNC, 64, event=102), reopened(SYNC, 65)])  # older, and a duplicate read again
        sync = self.queries(reader).group(SYNC)
        assert sync is not None and sync.status == "resolved" and sync.reopened_at == T0 + timedelta(minutes=65)
        project(store, [reopened(CHARGE, 30, event=103)])  # never resolved: open, as it was
        charge = self.queries(reader).group(CHARGE)
        assert charge is not None and charge.status == "open" and charge.resolved_at is None
        assert charge.reopened_at == T0 + timedelta(minutes=30)

    def test_the_latest_decision_counts_whatever_order_a_batch_holds_them_in(
        self, store: ViewWriter, reader: ViewReader
    ) -> None:
        project(store, history())
        project(store, [reopened(SYNC, 65), resolved(SYNC, 60)])
        project(store, [reopened(CHARGE, 65), resolved(CHARGE, 70, event=2)])
        assert self.queries(reader).group(SYNC).status == "open"  # type: ignore[union-attr]
        assert self.queries(reader).group(CHARGE).status == "resolved"  # type: ignore[union-attr]

    def test_a_resolution_stored_before_reopens_existed_is_kept_by_the_migration(self, blank: ViewWriter) -> None:
        assert blank.migrate("0010_status_changed_index")[-1] == "0010_status_changed_index"
        project(blank, history())
        as_of_0006 = sa.table("failure_resolution", sa.column("fingerprint"), sa.column("resolved_at", UtcTimestamp),
                              sa.column("resolved_by"), sa.column("event_id", Uuid))  # fmt: skip
        with blank.database.transaction() as conn:  # type: ignore[attr-defined]
            conn.execute(sa.insert(as_of_0006).values(fingerprint=SYNC, resolved_at=T0 + timedelta(minutes=60),
                                                      resolved_by="ops", event_id=UUID(int=1)))  # fmt: skip
        assert blank.migrate() == ["0011_failure_reopen", "0012_worker_meta", "0013_gin_pending_list"]
        with self.reader_for(blank) as reader:
            sync = self.queries(reader).group(SYNC)
            assert sync is not None and sync.status == "resolved" and sync.resolved_by == "ops"
            project(blank, [reopened(SYNC, 65)])
            sync = self.queries(reader).group(SYNC)
            assert sync is not None and sync.status == "open" and sync.reopened_by == "dev"
