"""The EventLog contract: every backend's test module subclasses ``EventLogContract``.

The class has no ``Test`` prefix, so pytest collects it only through the subclasses, which
provide the ``backend`` fixture (a fresh topic or file) and the ``make_log`` hook.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator

import pytest

from ledger.eventlog.base import AppendError, EventLog, LogRecord, Position, Start, StoredRecord

PARTITIONS = 3
POLL_MS = 100
WAIT_S = 20.0


def records(prefix: str, count: int, keys: int = 16) -> list[LogRecord]:
    """``count`` records over ``keys`` task ids; values are unique and name their order."""
    return [LogRecord(f"{prefix}-task-{i % keys}", f"{prefix}:{i}".encode()) for i in range(count)]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def collect(
    log: EventLog, start: Start, want: int, *, before_first: Callable[[], object] = lambda: None
) -> list[StoredRecord]:
    """Subscribe from ``start`` until ``want`` records arrived (or WAIT_S passed)."""
    stop = threading.Event()
    got: list[StoredRecord] = []
    batches = log.subscribe(start, stop_event=stop, poll_timeout_ms=POLL_MS)
    before_first()
    deadline = time.monotonic() + WAIT_S
    for batch in batches:
        got.extend(batch)
        if len(got) >= want or time.monotonic() > deadline:
            stop.set()
    return got


def values(found: Iterable[StoredRecord | LogRecord]) -> list[bytes]:
    """The values, sorted: what arrived, whatever the interleaving of partitions."""
    return sorted(b"<none>" if record.value is None else record.value for record in found)


class EventLogContract:
    """Behaviour every EventLog must have. Subclasses define ``backend`` and ``make_log``."""

    def make_log(self, partitions: int) -> EventLog:
        """A log on this test's topic/file; a second call opens a second instance on it."""
        raise NotImplementedError

    @pytest.fixture(autouse=True)
    def _logs(self, backend: None) -> Iterator[None]:
        """Close every log a test opened, before the backend fixture removes the topic."""
        self._opened: list[EventLog] = []
        yield
        for log in self._opened:
            log.close()

    def open_log(self, partitions: int = PARTITIONS) -> EventLog:
        log = self.make_log(partitions)
        self._opened.append(log)
        return log

    # -- append --------------------------------------------------------------------------

    def test_append_returns_positions_in_input_order(self) -> None:
        log = self.open_log()
        first, second = records("a", 40), records("b", 25)
        positions = log.append(first) + log.append(second)
        assert len(positions) == 65
        per_partition: dict[int, list[int]] = defaultdict(list)
        for position in positions:
            per_partition[position.partition].append(position.offset)
        for offsets in per_partition.values():
            assert offsets == list(range(len(offsets)))  # gap-free, in append order
        assert set(per_partition) <= set(range(PARTITIONS))
        stored = {(r.partition, r.offset): r.value for r in log.read()}
        expected = [r.value for r in first + second]
        assert [stored[(p.partition, p.offset)] for p in positions] == expected

    def test_same_key_lands_in_one_partition_in_append_order(self) -> None:
        log = self.open_log()
        batch = [LogRecord("task-A" if i % 2 else f"other-{i}", b"%d" % i) for i in range(30)]
        positions = log.append(batch)
        mine = [p for p, r in zip(positions, batch, strict=True) if r.key == "task-A"]
        assert {p.partition for p in mine} == {log.partition_for("task-A")}
        assert [p.offset for p in mine] == sorted(p.offset for p in mine)
        in_log = [r.value for r in log.read() if r.key == b"task-A"]
        assert in_log == [r.value for r in batch if r.key == "task-A"]

    def test_append_of_nothing_is_a_no_op(self) -> None:
        log = self.open_log()
        assert log.append([]) == []
        assert log.end_offsets() == dict.fromkeys(range(PARTITIONS), 0)

    def test_partition_for_agrees_with_where_records_land(self) -> None:
        log = self.open_log()
        batch = records("p", 60, keys=60)
        positions = log.append(batch)
        for position, record in zip(positions, batch, strict=True):
            assert position.partition == log.partition_for(record.key)
        assert len({p.partition for p in positions}) == PARTITIONS  # keys really spread

    # -- append without waiting ----------------------------------------------------------

    def test_append_nowait_then_wait_gives_what_append_would(self) -> None:
        log = self.open_log()
        batches = [records(f"n{i}", 40) for i in range(5)]
        pending = [log.append_nowait(batch) for batch in batches]
        positions = [position for p in pending for position in p.wait(WAIT_S)]
        assert all(p.done() for p in pending)
        sent = [record for batch in batches for record in batch]
        assert [p.partition for p in positions] == [log.partition_for(r.key) for r in sent]
        stored = {(r.partition, r.offset): r.value for r in log.read()}
        assert [stored[(p.partition, p.offset)] for p in positions] == [r.value for r in sent]
        for partition in range(PARTITIONS):
            offsets = [p.offset for p in positions if p.partition == partition]
            assert offsets == list(range(len(offsets)))  # gap-free, in the order handed over

    def test_append_nowait_then_flush(self) -> None:
        log = self.open_log()
        log.flush(WAIT_S)  # nothing handed over yet: nothing to wait for
        pending = [log.append_nowait(records(f"n{i}", 100)) for i in range(5)]
        log.flush(timeout=WAIT_S)
        assert all(p.done() for p in pending)
        positions = [position for p in pending for position in p.wait(0)]
        assert len(set(positions)) == 500
        assert sum(log.end_offsets().values()) == 500

    def test_appends_after_close_raise_append_error(self) -> None:
        log = self.open_log()
        log.close()
        with pytest.raises(AppendError, match="closed"):
            log.append(records("late", 1))
        with pytest.raises(AppendError, match="closed"):
            log.append_nowait(records("late", 1))

    # -- read ----------------------------------------------------------------------------

    def test_read_from_beginning_returns_records_intact(self) -> None:
        log = self.open_log()
        batch = [
            LogRecord("täsk-🙂-1", bytes(range(256)), (("trace", b"\x00\xff"), ("ünï", b""))),
            LogRecord("plain", b"", ()),
            LogRecord("täsk-🙂-1", b"\x00" * 3, (("dup", b"1"), ("dup", b"2"))),
            *records("x", 20),
        ]
        before = now_ms()
        positions = log.append(batch)
        found = list(log.read())
        assert len(found) == len(batch)
        by_position = {r.position: r for r in found}
        for position, record in zip(positions, batch, strict=True):
            stored = by_position[position]
            assert (stored.topic, stored.key) == (log.topic, record.key.encode())
            assert (stored.value, stored.headers) == (record.value, record.headers)
            assert before - 5_000 <= stored.timestamp_ms <= now_ms() + 5_000
        for partition in range(PARTITIONS):
            offsets = [r.offset for r in found if r.partition == partition]
            assert offsets == list(range(len(offsets)))

    def test_read_from_a_mapping_returns_only_the_rest(self) -> None:
        log = self.open_log()
        positions = log.append(records("m", 60))
        ends = log.end_offsets()
        start = {p: ends[p] // 2 for p in range(1, PARTITIONS)}  # partition 0 missing: all
        found = list(log.read(start))
        expected = {p for p in positions if p.offset >= start.get(p.partition, 0)}
        assert {r.position for r in found} == expected
        assert len(found) == len(expected)

    def test_read_stops_at_stop_offsets(self) -> None:
        log = self.open_log()
        log.append(records("s", 60))
        ends = log.end_offsets()
        stop = {0: 1, 1: ends[1] + 100}  # partition 2 missing: up to its end
        found = list(log.read(stop=stop))
        got = defaultdict(list)
        for r in found:
            got[r.partition].append(r.offset)
        assert got[0] == [0]
        assert got[1] == list(range(ends[1]))  # a stop past the end is capped, no waiting
        assert got[2] == list(range(ends[2]))

    def test_read_ends_where_the_log_ended_when_called(self) -> None:
        log = self.open_log()
        log.append(records("old", 12))
        reader = log.read()
        log.append(records("new", 12))
        assert values(reader) == values(records("old", 12))

    # -- subscribe -----------------------------------------------------------------------

    def test_subscribe_from_end_sees_only_later_records(self) -> None:
        log = self.open_log()
        log.append(records("before", 10))
        later, background = records("after", 5), records("bg", 15)

        def append_later() -> None:
            log.append(later)  # before the first next(): "end" was fixed at the call
            threading.Timer(0.3, log.append, [background]).start()

        found = collect(log, "end", 20, before_first=append_later)
        assert values(found) == values(later + background)

    def test_subscribe_from_beginning_sees_everything(self) -> None:
        log = self.open_log()
        batch = records("all", 30)
        log.append(batch)
        found = collect(log, "beginning", 30)
        assert values(found) == values(batch)

    def test_subscribe_from_a_mapping(self) -> None:
        log = self.open_log()
        positions = log.append(records("sub", 30))
        expected = sorted((p for p in positions if p.offset >= 2), key=_order)
        got = collect(log, dict.fromkeys(range(PARTITIONS), 2), len(expected))
        assert sorted((r.position for r in got), key=_order) == expected

    def test_subscribe_yields_empty_batches_and_returns_when_stopped(self) -> None:
        log = self.open_log()
        stop = threading.Event()
        threading.Timer(0.5, stop.set).start()
        started = time.monotonic()
        batches = list(log.subscribe("end", stop_event=stop, poll_timeout_ms=POLL_MS))
        assert time.monotonic() - started < 10
        assert batches and all(batch == [] for batch in batches)

    # -- offsets -------------------------------------------------------------------------

    def test_end_and_beginning_offsets(self) -> None:
        log = self.open_log()
        zero = dict.fromkeys(range(PARTITIONS), 0)
        assert log.end_offsets() == zero
        assert log.beginning_offsets() == zero
        positions = log.append(records("o", 50))
        counts = {p: sum(1 for x in positions if x.partition == p) for p in range(PARTITIONS)}
        assert log.end_offsets() == counts
        assert log.beginning_offsets() == zero

    def test_offsets_for_time_splits_earlier_from_later_records(self) -> None:
        log = self.open_log()
        log.append(records("early", 30))
        time.sleep(0.05)
        middle = now_ms()
        time.sleep(0.05)
        late = log.append(records("late", 30, keys=2))  # some partitions get none
        split = log.offsets_for_time(middle)
        ends = log.end_offsets()
        for partition in range(PARTITIONS):
            firsts = [p.offset for p in late if p.partition == partition]
            assert split[partition] == (min(firsts) if firsts else ends[partition])
        found = list(log.read(split))
        assert values(found) == values(records("late", 30, keys=2))
        assert log.offsets_for_time(0) == log.beginning_offsets()
        assert log.offsets_for_time(now_ms() + 60_000) == ends

    # -- lifecycle -----------------------------------------------------------------------

    def test_close_is_idempotent(self) -> None:
        log = self.open_log()
        log.append(records("c", 3))
        log.close()
        log.close()

    def test_a_second_instance_reads_what_the_first_wrote(self) -> None:
        first = self.open_log()
        batch = records("durable", 20)
        positions = first.append(batch)
        first.close()
        second = self.open_log()
        assert second.partitions == PARTITIONS
        found = {r.position: r.value for r in second.read()}
        assert found == {p: r.value for p, r in zip(positions, batch, strict=True)}


def _order(position: Position) -> tuple[int, int]:
    return position.partition, position.offset
