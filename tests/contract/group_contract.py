"""The GroupMember contract (group membership, the event log's second port): every
backend's test module subclasses ``GroupMemberContract``.

The class has no ``Test`` prefix, so pytest collects it only through the subclasses, which
provide the ``backend`` fixture and the ``make_log`` / ``make_member`` hooks. What only a
real group can show (two members sharing partitions, a rebalance) is in the Kafka
integration tests; this is what one member must do on any backend.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator

import pytest

from ledger.eventlog.base import EventLog, StoredRecord
from ledger.eventlog.group import GroupMember
from tests.contract.eventlog_contract import PARTITIONS, POLL_MS, WAIT_S, records, values
from tests.helpers import unique_name


class Owner:
    """What a projector or subscriber does with a member: on each assignment (a rebalance
    may assign a partition again) it answers with the next offset after what it handled,
    else with ``starts`` (else 0), and remembers what it was asked."""

    def __init__(self, starts: dict[int, int] | None = None) -> None:
        self.starts = dict(starts or {})
        self.asked: list[set[int]] = []
        self.revoked: list[set[int]] = []

    def on_assigned(self, partitions: set[int]) -> dict[int, int]:
        self.asked.append(set(partitions))
        return {p: self.starts.get(p, 0) for p in partitions}

    def handled(self, batch: list[StoredRecord]) -> list[StoredRecord]:
        for record in batch:
            self.starts[record.partition] = record.offset + 1
        return batch

    def on_revoked(self, partitions: set[int]) -> None:
        self.revoked.append(set(partitions))


def poll_until(member: GroupMember, owner: Owner, want: int, *, max_records: int = 1000) -> list[StoredRecord]:
    """Poll until ``want`` records arrived, or WAIT_S passed; ``owner`` handles each."""
    got: list[StoredRecord] = []
    deadline = time.monotonic() + WAIT_S
    while len(got) < want and time.monotonic() < deadline:
        batch = member.poll(max_records, POLL_MS)
        assert len(batch) <= max_records
        got += owner.handled(batch)
    return got


def owning_all(member: GroupMember) -> None:
    """Poll until the member owns every partition (a Kafka member joins inside a poll)."""
    deadline = time.monotonic() + WAIT_S
    while member.assigned() != set(range(PARTITIONS)) and time.monotonic() < deadline:
        member.poll(100, POLL_MS)
    assert member.assigned() == set(range(PARTITIONS))


class GroupMemberContract:
    """Behaviour every GroupMember must have. Subclasses define ``backend``, ``make_log``
    and ``make_member``."""

    def make_log(self) -> EventLog:
        """The log (with PARTITIONS partitions) of this test's topic/file."""
        raise NotImplementedError

    def make_member(self, log: EventLog, group: str) -> GroupMember:
        """A member of ``group`` reading ``log``'s topic."""
        raise NotImplementedError

    @pytest.fixture(autouse=True)
    def _opened(self, backend: None) -> Iterator[None]:
        self._closing: list[EventLog | GroupMember] = []
        self.group = unique_name("grp")
        yield
        for thing in reversed(self._closing):
            thing.close()

    def open_log(self) -> EventLog:
        log = self.make_log()
        self._closing.append(log)
        return log

    def join(self, log: EventLog, group: str | None = None) -> GroupMember:
        member = self.make_member(log, group or self.group)
        self._closing.append(member)
        return member

    # -- assignment and reading --------------------------------------------------------------

    def test_the_owner_says_where_each_partition_starts_before_any_record(self) -> None:
        log = self.open_log()
        positions = log.append(records("a", 60))
        owner = Owner(starts=dict.fromkeys(range(PARTITIONS), 2))
        member = self.join(log)
        member.start(owner.on_assigned, owner.on_revoked)
        expected = {p for p in positions if p.offset >= 2}
        got = poll_until(member, owner, len(expected))
        assert set().union(*owner.asked) == set(range(PARTITIONS))  # one member owns them all
        assert {r.position for r in got} == expected and len(got) == len(expected)
        assert member.assigned() == set(range(PARTITIONS))
        assert member.topic == log.topic and member.group == self.group

    def test_poll_keeps_per_partition_order_and_its_limit(self) -> None:
        log = self.open_log()
        log.append(records("o", 90, keys=7))
        member = self.join(log)
        owner = Owner()
        member.start(owner.on_assigned, owner.on_revoked)
        got = poll_until(member, owner, 90, max_records=10)
        per_partition: dict[int, list[int]] = defaultdict(list)
        for record in got:
            per_partition[record.partition].append(record.offset)
        assert sum(len(o) for o in per_partition.values()) == 90
        for offsets in per_partition.values():
            assert offsets == list(range(len(offsets)))  # ascending, none twice, none skipped

    def test_records_appended_later_arrive(self) -> None:
        log = self.open_log()
        member, owner = self.join(log), Owner()
        member.start(owner.on_assigned, owner.on_revoked)
        owning_all(member)
        later = records("later", 20)
        log.append(later)
        assert values(poll_until(member, owner, 20)) == values(later)

    def test_seek_reads_again_from_the_given_offsets(self) -> None:
        log = self.open_log()
        batch = records("s", 45)
        log.append(batch)
        member, owner = self.join(log), Owner()
        member.start(owner.on_assigned, owner.on_revoked)
        assert values(poll_until(member, owner, 45)) == values(batch)
        rewind = dict.fromkeys(member.assigned(), 0)
        owner.starts.update(rewind)
        member.seek(rewind)  # a refused batch: read it again
        assert values(poll_until(member, owner, 45)) == values(batch)

    def test_end_and_beginning_offsets_are_the_logs(self) -> None:
        log = self.open_log()
        log.append(records("e", 50))
        member = self.join(log)
        member.start(Owner().on_assigned, Owner().on_revoked)
        owning_all(member)
        assert member.end_offsets() == log.end_offsets()
        assert member.beginning_offsets() == log.beginning_offsets() == dict.fromkeys(range(PARTITIONS), 0)

    # -- the group's positions ---------------------------------------------------------------

    def test_committed_positions_outlive_the_member(self) -> None:
        log = self.open_log()
        log.append(records("c", 30))
        first = self.join(log)
        saved_at_start: dict[int, int] = {}

        def save_where_it_starts(partitions: set[int]) -> dict[int, int]:
            start = dict.fromkeys(partitions, 1)
            first.commit(start)  # from inside on_assigned, as a subscriber does
            saved_at_start.update(first.committed(partitions))
            return start

        first.start(save_where_it_starts, Owner().on_revoked)
        owning_all(first)
        assert saved_at_start == dict.fromkeys(range(PARTITIONS), 1)
        first.commit({0: 5, 1: 3})
        first.close()
        second = self.join(log)
        seen: dict[int, int] = {}

        def resume(partitions: set[int]) -> dict[int, int]:
            seen.update(second.committed(partitions))
            return {p: seen.get(p, 0) for p in partitions}

        second.start(resume, Owner().on_revoked)
        owning_all(second)
        assert seen == {0: 5, 1: 3, **{p: 1 for p in range(2, PARTITIONS)}}
        assert second.committed({0}) == {0: 5}  # only the partitions asked for
        other = self.join(log, unique_name("other"))
        other.start(lambda partitions: other.committed(partitions) or dict.fromkeys(partitions, 0), Owner().on_revoked)
        owning_all(other)
        assert other.committed(set(range(PARTITIONS))) == {}  # groups keep their own positions

    # -- lifecycle -----------------------------------------------------------------------

    def test_close_is_idempotent_and_start_works_again(self) -> None:
        log = self.open_log()
        log.append(records("r", 12))
        member = self.join(log)
        first, again = Owner(), Owner()
        member.start(first.on_assigned, first.on_revoked)
        assert len(poll_until(member, first, 12)) == 12
        member.close()
        member.close()
        member.start(again.on_assigned, again.on_revoked)
        assert values(poll_until(member, again, 12)) == values(records("r", 12))
