"""Workers in the domain (``domain.workers``): the online / offline rule at the time asked,
the merge of a worker's events in any order, and the id that makes a heartbeat delivered
twice one event."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from functools import reduce

import pytest

from ledger.domain.events import WorkerEvent, WorkerHeartbeat, WorkerOffline, WorkerOnline, event_key
from ledger.domain.workers import (
    DEFAULT_FREQ,
    WorkerState,
    merge,
    offline_after,
    presence,
    sighting,
    stopped_at,
    worker_event_id,
)

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
HOST = "celery@vm-3"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_worker_is_online_until_it_misses_three_heartbeats() -> None:
    beat = at(0)
    assert presence(beat, None, 2.0, at(0)) == "online"
    assert presence(beat, None, 2.0, at(6)) == "online"  # exactly 3 intervals: not yet missed
    assert presence(beat, None, 2.0, at(6.001)) == "offline"
    assert presence(beat, None, 10.0, at(29)) == "online"  # its own interval counts
    assert presence(beat, None, None, at(3 * DEFAULT_FREQ)) == "online"  # none given: Celery's default
    assert presence(beat, None, None, at(3 * DEFAULT_FREQ + 0.001)) == "offline"
    assert offline_after(beat, 2.0) == at(6) and offline_after(beat, None) == at(6)
    assert presence(beat, None, 2.0, at(-60)) == "online"  # a worker clock ahead of ours


def test_an_offline_event_holds_until_a_later_online_or_heartbeat() -> None:
    assert presence(at(10), at(11), 2.0, at(11)) == "offline"  # said goodbye, however recent its beat
    assert stopped_at(at(10), at(11)) == at(11)
    assert presence(at(10), at(10), 2.0, at(10)) == "offline"  # a tie: the offline is sent last
    assert presence(at(12), at(11), 2.0, at(13)) == "online"  # started again
    assert stopped_at(at(12), at(11)) is None
    assert presence(None, at(11), None, at(11)) == "offline" and stopped_at(None, at(11)) == at(11)
    assert stopped_at(at(10), None) is None


def life() -> list[WorkerEvent]:
    """A worker that starts, beats (its load and counts changing), stops, starts again."""
    details = {"hostname": HOST, "freq": 2.0, "sw_ident": "py-celery", "sw_sys": "Linux"}
    events: list[WorkerEvent] = [WorkerOnline(**details, sw_ver="5.6.0", occurred_at=at(0), processed=0, active=0)]
    events += [WorkerHeartbeat(**details, sw_ver="5.6.0", occurred_at=at(2 * i), processed=i, active=i % 3,
                               loadavg=(i / 10, 0.5, 0.25)) for i in range(1, 20)]  # fmt: skip
    events.append(WorkerOffline(**details, sw_ver="5.6.0", occurred_at=at(40), processed=19, active=0))
    events.append(WorkerOnline(**details, sw_ver="5.7.0", occurred_at=at(100), processed=0, active=0,
                               emitter={"host": "vm-3", "pid": 77, "worker": HOST}))  # fmt: skip
    return events


def fold(events: list[WorkerEvent]) -> WorkerState:
    return reduce(merge, (sighting(e) for e in events))


def test_a_workers_events_merge_to_one_row_in_any_order_and_with_duplicates() -> None:
    events = life()
    expected = fold(events)
    assert (expected.first_seen, expected.last_seen) == (at(0), at(100))
    assert (expected.last_heartbeat, expected.offline_at) == (at(100), at(40))
    assert (expected.sw_ver, expected.processed, expected.pid) == ("5.7.0", 0, 77)  # the latest event's details
    assert expected.loadavg is None  # the latest event said none
    rng = random.Random(16)
    for _ in range(50):
        shuffled = [*events, *rng.sample(events, 5)]
        rng.shuffle(shuffled)
        assert fold(shuffled) == expected
    assert fold(list(reversed(events))) == expected
    before_restart = fold(events[:-1])
    assert (before_restart.last_heartbeat, before_restart.offline_at) == (at(38), at(40))
    assert before_restart.loadavg is None and before_restart.processed == 19  # the offline event's counts
    assert presence(before_restart.last_heartbeat, before_restart.offline_at, 2.0, at(41)) == "offline"
    assert presence(expected.last_heartbeat, expected.offline_at, expected.freq, at(101)) == "online"


def test_events_at_the_same_instant_take_their_details_from_the_greater_id() -> None:
    a = WorkerHeartbeat(hostname=HOST, occurred_at=at(1), processed=1)
    b = WorkerHeartbeat(hostname=HOST, occurred_at=at(1), processed=2)
    winner = max(a, b, key=lambda e: e.event_id)
    assert merge(sighting(a), sighting(b)) == merge(sighting(b), sighting(a))
    assert merge(sighting(a), sighting(b)).processed == winner.processed


def test_the_event_id_is_the_worker_the_type_and_the_instant() -> None:
    one = worker_event_id(HOST, "worker.heartbeat", at(2))
    assert one == worker_event_id(HOST, "worker.heartbeat", at(2).astimezone(timezone_plus_2()))
    assert len({one, worker_event_id(HOST, "worker.online", at(2)), worker_event_id(HOST, "worker.heartbeat", at(4)),
                worker_event_id("celery@vm-4", "worker.heartbeat", at(2))}) == 4  # fmt: skip
    assert event_key(WorkerHeartbeat(hostname=HOST)) == HOST


def timezone_plus_2() -> timezone:
    return timezone(timedelta(hours=2))


@pytest.mark.parametrize(("field", "value"), [("freq", 0), ("loadavg", [0.1, 0.2]), ("loadavg", [-1, 0, 0]),
                                              ("processed", -1), ("hostname", ""), ("hostname", "a\x00b")])  # fmt: skip
def test_a_worker_event_refuses_what_no_worker_sends(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        WorkerHeartbeat(**{"hostname": HOST, field: value})
