"""The GroupMember contract on the embedded SQLite log (a member owns every partition)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ledger.eventlog.base import EventLog
from ledger.eventlog.group import GroupMember
from ledger.eventlog.sqlite import SqliteEventLog
from ledger.eventlog.sqlite_group import SqliteGroupMember
from tests.contract.eventlog_contract import PARTITIONS, POLL_MS
from tests.contract.group_contract import GroupMemberContract


class TestSqliteGroupMember(GroupMemberContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> None:
        self.path = tmp_path / "events.db"

    def make_log(self) -> EventLog:
        return SqliteEventLog(self.path, "events", partitions=PARTITIONS, poll_timeout_ms=POLL_MS)

    def make_member(self, log: EventLog, group: str) -> GroupMember:
        assert isinstance(log, SqliteEventLog)
        return SqliteGroupMember(log, group)

    def test_a_member_that_never_saves_creates_no_table(self) -> None:
        log = self.open_log()
        member = self.join(log)
        member.start(lambda partitions: dict.fromkeys(partitions, 0), lambda _: None)
        member.poll(10, POLL_MS)
        member.close()
        with sqlite3.connect(self.path) as conn:
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "subscriber_positions" not in tables  # a projector leaves the file as it found it
