"""The workers view (``worker_meta``, written by every writer's upsert) and its queries
(``ViewReader.workers`` / ``worker_tasks``, through ``WorkerQueries``): every store
answers them alike, PostgreSQL and SQLite."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from functools import reduce

import pytest

from ledger.domain.events import AnyEvent, WorkerEvent, WorkerHeartbeat, WorkerOffline, WorkerOnline
from ledger.domain.statuses import TaskStatus
from ledger.domain.workers import WorkerState, merge, sighting, worker_event_id
from ledger.projections.store import ViewReader, ViewWriter
from ledger.projections.workers import NEWEST_TASKS, WorkerQueries
from tests.contract.viewstore_contract import ViewsContract, lifecycle, project

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
ONE, TWO, THREE = "celery@one", "celery@two", "celery@three"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def event(cls: type[WorkerEvent], hostname: str, seconds: float, **details: object) -> WorkerEvent:
    """A worker's event as the Celery translator makes it (its id from hostname, type, time)."""
    when = at(seconds)
    kind = cls.model_fields["type"].default
    return cls(hostname=hostname, occurred_at=when, event_id=worker_event_id(hostname, kind, when),
               emitter={"host": hostname.split("@")[1], "pid": 100, "worker": hostname}, **details)  # fmt: skip


def fleet() -> list[WorkerEvent]:
    """ONE starts and beats for a minute; TWO beats, then stops beating (killed) at 30 s;
    THREE beats, says goodbye at 20 s."""
    sw = {"freq": 2.0, "sw_ident": "py-celery", "sw_ver": "5.7.0", "sw_sys": "Linux"}
    events: list[WorkerEvent] = [event(WorkerOnline, host, 0, processed=0, active=0, **sw)
                                 for host in (ONE, TWO, THREE)]  # fmt: skip
    for i in range(1, 31):
        events.append(event(WorkerHeartbeat, ONE, 2 * i, processed=i * 10, active=i % 4,
                            loadavg=(i / 10, 0.5, 0.25), **sw))  # fmt: skip
        if 2 * i <= 30:
            events.append(event(WorkerHeartbeat, TWO, 2 * i, processed=i, active=1, loadavg=(2.0, 1.5, 1.0), **sw))
        if 2 * i < 20:
            events.append(event(WorkerHeartbeat, THREE, 2 * i, processed=i, active=0, **sw))
    events.append(event(WorkerOffline, THREE, 20, processed=9, active=0, **sw))
    return events


def folded(events: list[WorkerEvent]) -> dict[str, WorkerState]:
    by_host: dict[str, list[WorkerState]] = {}
    for e in events:
        by_host.setdefault(e.hostname, []).append(sighting(e))
    return {host: reduce(merge, seen) for host, seen in sorted(by_host.items())}


class WorkersContract(ViewsContract):
    def queries(self, reader: ViewReader, seconds: float) -> WorkerQueries:
        return WorkerQueries(reader, now=lambda: at(seconds))

    def test_the_workers_rows_are_the_domains_merge_whatever_order_and_batches(
        self, store: ViewWriter, reader: ViewReader
    ) -> None:
        events = fleet()
        rng = random.Random(16)
        shuffled = [*events, *rng.sample(events, 20)]  # duplicates: the same heartbeat from two ingesters
        rng.shuffle(shuffled)
        for start in range(0, len(shuffled), 17):  # batches of 17, each a mix of workers and times
            project(store, shuffled[start : start + 17])
        expected = folded(events)
        assert reader.workers(limit=10) == list(expected.values())
        assert reader.workers(hostname=TWO, limit=1) == [expected[TWO]]
        assert reader.workers(hostname="celery@nobody", limit=1) == []
        one = expected[ONE]
        assert (one.first_seen, one.last_heartbeat, one.processed) == (at(0), at(60), 300)
        assert one.loadavg == (3.0, 0.5, 0.25)
        project(store, list(reversed(events)))  # every event again, newest first: nothing moves back
        assert reader.workers(limit=10) == list(expected.values())

    def test_heartbeats_keep_no_history(self, store: ViewWriter) -> None:
        project(store, fleet())
        assert next(store.table_rows("task_event")[1], None) is None
        assert next(store.table_rows("periodic_task_event")[1], None) is None
        assert [row[0] for row in store.table_rows("worker_meta")[1]] == [ONE, THREE, TWO]

    def test_online_offline_by_missed_heartbeats_and_by_goodbye_at_the_time_asked(
        self, store: ViewWriter, reader: ViewReader
    ) -> None:
        project(store, fleet())
        at_31 = {w.hostname: w for w in self.queries(reader, 31).workers()}
        assert {h: w.status for h, w in at_31.items()} == {ONE: "online", TWO: "online", THREE: "offline"}
        assert (at_31[THREE].offline_at, at_31[THREE].silent_since) == (at(20), None)
        at_37 = {w.hostname: w for w in self.queries(reader, 37).workers()}  # TWO beat last at 30: 3 missed
        assert {h: w.status for h, w in at_37.items()} == {ONE: "online", TWO: "offline", THREE: "offline"}
        assert (at_37[TWO].offline_at, at_37[TWO].silent_since, at_37[TWO].last_heartbeat) == (None, at(36), at(30))
        assert at_37[ONE].checked_at == at(37) and at_37[ONE].software == "py-celery 5.7.0 (Linux)"
        project(store, [event(WorkerOnline, THREE, 50, freq=5.0)])  # THREE started again
        three = self.queries(reader, 60).worker(THREE)
        assert three is not None and (three.status, three.offline_at, three.freq) == ("online", None, 5.0)
        assert [w.hostname for w in self.queries(reader, 0).workers(limit=2)] == [ONE, THREE]

    def test_one_worker_with_the_tasks_it_ran(self, store: ViewWriter, reader: ViewReader) -> None:
        tasks: list[AnyEvent] = []
        for i in range(NEWEST_TASKS + 3):
            status = TaskStatus.FAILURE if i % 4 == 0 else TaskStatus.DONE
            tasks += lifecycle(f"t-{i:02d}", status=status, at=at(i), worker=ONE)
        tasks += lifecycle("other", at=at(5), worker=TWO)
        tasks += lifecycle("running", status=TaskStatus.STARTED, at=at(100), worker=ONE)
        project(store, [*fleet(), *tasks])
        one = self.queries(reader, 61).worker(ONE)
        assert one is not None and one.status == "online" and one.processed == 300
        assert one.tasks == {TaskStatus.DONE: 9, TaskStatus.FAILURE: 4, TaskStatus.STARTED: 1}
        assert one.newest_tasks == ["running", *(f"t-{i:02d}" for i in range(12, 3, -1))]
        two = self.queries(reader, 61).worker(TWO)
        assert two is not None and two.tasks == {TaskStatus.DONE: 1} and two.newest_tasks == ["other"]
        project(store, lifecycle("orphan", worker="celery@never-beat"))  # tasks, but no worker event
        assert self.queries(reader, 61).worker("celery@never-beat") is None

    def test_bad_arguments_name_the_rule(self, reader: ViewReader) -> None:
        queries = self.queries(reader, 0)
        with pytest.raises(ValueError, match=r"^limit: must be between 1 and 1000, got 0$"):
            queries.workers(limit=0)
        with pytest.raises(ValueError, match=r"^hostname: must not be blank"):
            queries.worker(" ")
        with pytest.raises(ValueError, match=r"^hostname: must not contain NUL characters"):
            queries.worker("a\x00b")
        assert queries.workers() == [] and queries.worker("celery@one") is None

    def test_views_of_the_previous_version_gain_the_workers_view(self, blank: ViewWriter) -> None:
        assert blank.migrate("0011_failure_reopen")[-1] == "0011_failure_reopen"
        project(blank, lifecycle("t-1", worker=ONE))
        assert blank.migrate() == ["0012_worker_meta", "0013_gin_pending_list"]
        project(blank, fleet())
        with self.reader_for(blank) as reader:
            assert [w.hostname for w in self.queries(reader, 31).workers()] == [ONE, THREE, TWO]
            one = self.queries(reader, 31).worker(ONE)
            assert one is not None and one.newest_tasks == ["t-1"]
