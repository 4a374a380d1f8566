"""Group membership on the embedded log: a member owns every partition (one process
reads a SQLite file; there is no broker to share partitions out), and the group's
positions live in the log's file, beside the records."""

from __future__ import annotations

import sqlite3
import threading

from ledger.eventlog.base import EventLogUnavailable
from ledger.eventlog.group import GroupMember, WholeLogSource
from ledger.eventlog.sqlite import SqliteEventLog

__all__ = ["SqliteGroupMember"]

_TABLE = (
    "CREATE TABLE IF NOT EXISTS subscriber_positions (grp TEXT NOT NULL, topic TEXT NOT NULL, "
    "partition INTEGER NOT NULL, next_offset INTEGER NOT NULL, PRIMARY KEY (grp, topic, partition))"
)
_LOAD = "SELECT partition, next_offset FROM subscriber_positions WHERE grp = ? AND topic = ?"
_SAVE = (
    "INSERT INTO subscriber_positions VALUES (?, ?, ?, ?) ON CONFLICT (grp, topic, partition) "
    "DO UPDATE SET next_offset = excluded.next_offset"
)


class SqliteGroupMember(WholeLogSource, GroupMember):
    """Member of ``group`` on ``log``'s topic; its positions table is created on first use,
    so a member that never saves (a projector) leaves the file as it found it."""

    def __init__(self, log: SqliteEventLog, group: str) -> None:
        super().__init__(log)
        self.path, self.group = log.path, group
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        """The positions' own connection (the log's belongs to the log), opened on demand."""
        if self._conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
                conn.execute(_TABLE)
            except sqlite3.Error as exc:
                raise EventLogUnavailable(f"SQLite event log {self.path}: group positions: {exc}") from exc
            self._conn = conn
        return self._conn

    def committed(self, partitions: set[int]) -> dict[int, int]:
        with self._lock:
            try:
                rows = self._connection().execute(_LOAD, (self.group, self.topic)).fetchall()
            except sqlite3.Error as exc:
                raise EventLogUnavailable(f"SQLite event log {self.path}: reading positions: {exc}") from exc
        return {p: o for p, o in rows if p in partitions}

    def commit(self, positions: dict[int, int]) -> None:
        owned = self.assigned()
        rows = [(self.group, self.topic, p, o) for p, o in positions.items() if p in owned]
        with self._lock:
            try:
                self._connection().executemany(_SAVE, rows)
            except sqlite3.Error as exc:
                raise EventLogUnavailable(f"SQLite event log {self.path}: saving positions: {exc}") from exc

    def close(self) -> None:
        super().close()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
