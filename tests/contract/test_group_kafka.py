"""The GroupMember contract on the real Kafka broker (a consumer group of one member)."""

from __future__ import annotations

import pytest

from ledger.eventlog.base import EventLog
from ledger.eventlog.group import GroupMember
from ledger.eventlog.kafka import KafkaEventLog
from ledger.eventlog.kafka_group import KafkaGroupMember
from tests.contract.eventlog_contract import PARTITIONS
from tests.contract.group_contract import GroupMemberContract
from tests.contract.test_eventlog_kafka import FAST


class TestKafkaGroupMember(GroupMemberContract):
    @pytest.fixture
    def backend(self, kafka_bootstrap: str, kafka_topic: str) -> None:
        self.bootstrap, self.topic = kafka_bootstrap, kafka_topic

    def make_log(self) -> EventLog:
        return KafkaEventLog(self.bootstrap, self.topic, partitions=PARTITIONS, **FAST)

    def make_member(self, log: EventLog, group: str) -> GroupMember:
        return KafkaGroupMember(self.bootstrap, log.topic, group, session_timeout_ms=6000, request_timeout_ms=10_000)
