"""The GroupMember contract on the real Kafka broker through confluent-kafka (librdkafka),
plus what only this adapter can get wrong: an owner's callback that fails inside
librdkafka's poll, librdkafka's errors mapped to the port's, the setting that chooses it."""

from __future__ import annotations

import threading
import time

import pytest

from ledger.eventlog.base import EventLog, EventLogUnavailable, StoredRecord
from ledger.eventlog.confluent import ConfluentEventLog
from ledger.eventlog.confluent_group import ConfluentGroupMember
from ledger.eventlog.group import GroupMember
from tests.contract.eventlog_contract import PARTITIONS, POLL_MS, WAIT_S, records, values
from tests.contract.group_contract import GroupMemberContract, Owner, owning_all, poll_until
from tests.contract.test_eventlog_confluent import FAST


class TestConfluentGroupMember(GroupMemberContract):
    @pytest.fixture
    def backend(self, kafka_bootstrap: str, kafka_topic: str) -> None:
        self.bootstrap, self.topic = kafka_bootstrap, kafka_topic

    def make_log(self) -> EventLog:
        return ConfluentEventLog(self.bootstrap, self.topic, partitions=PARTITIONS, **FAST)

    def make_member(self, log: EventLog, group: str) -> GroupMember:
        return ConfluentGroupMember(self.bootstrap, log.topic, group, session_timeout_ms=6000,
                                    request_timeout_ms=10_000)  # fmt: skip

    def test_an_owner_that_fails_is_asked_again_and_nothing_is_read_before(self) -> None:
        """The owner's callback runs inside librdkafka's poll: its error comes out of
        ``poll`` (not swallowed, not turned into librdkafka's default assignment at the
        committed offsets), nothing is read meanwhile, and the next poll asks again."""
        log = self.open_log()
        positions = log.append(records("f", 40))
        member, owner = self.join(log), Owner(starts=dict.fromkeys(range(PARTITIONS), 1))
        failures: list[set[int]] = []

        def database_away_twice(partitions: set[int]) -> dict[int, int]:
            if len(failures) < 2:
                failures.append(set(partitions))
                raise ConnectionError("view store away")
            return owner.on_assigned(partitions)

        member.start(database_away_twice, owner.on_revoked)
        got: list[StoredRecord] = []
        deadline = time.monotonic() + WAIT_S
        while not owner.asked and time.monotonic() < deadline:
            try:
                got += owner.handled(member.poll(100, POLL_MS))
            except ConnectionError:
                assert got == []  # nothing read while unpositioned
        assert failures == [set(range(PARTITIONS))] * 2
        assert owner.asked == [set(range(PARTITIONS))]
        expected = {p for p in positions if p.offset >= 1}
        got += poll_until(member, owner, len(expected) - len(got))
        assert {r.position for r in got} == expected and len(got) == len(expected)  # from the owner's offsets

    def test_a_record_is_returned_as_soon_as_it_arrives(self) -> None:
        """librdkafka's batch consume waits out its whole timeout unless ``max_records``
        came; the member returns with the first record instead (a projector's latency).
        A poll allowed a minute comes back with the record, not after its minute."""
        log = self.open_log()
        member, owner = self.join(log), Owner()
        member.start(owner.on_assigned, owner.on_revoked)
        owning_all(member)
        got: list[StoredRecord] = []
        polling = threading.Thread(target=lambda: got.extend(member.poll(10_000, 60_000)), daemon=True)
        polling.start()
        log.append(records("now", 1))
        polling.join(WAIT_S)
        assert not polling.is_alive(), "poll sat on its timeout with a record there"
        assert values(got) == values(records("now", 1))

def test_an_unreachable_broker_raises_unavailable_in_one_line() -> None:
    member = ConfluentGroupMember("127.0.0.1:1", "nowhere", "g", request_timeout_ms=1_000)
    with pytest.raises(EventLogUnavailable, match=r"Kafka at 127\.0\.0\.1:1 is not reachable") as info:
        member.start(lambda partitions: dict.fromkeys(partitions, 0), lambda _: None)
    assert "\n" not in str(info.value)
    member.close()

