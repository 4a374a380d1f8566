"""Subscriber positions of the embedded backend, in the SQLite log file beside the events."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ledger.consumers.positions import PositionStore


class SqlitePositions(PositionStore):
    def __init__(self, path: Path, group: str, topic: str) -> None:
        self.group, self.topic = group, topic
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS subscriber_positions (grp TEXT NOT NULL, topic TEXT NOT NULL, "
            "partition INTEGER NOT NULL, next_offset INTEGER NOT NULL, PRIMARY KEY (grp, topic, partition))"
        )

    def load(self, partitions: set[int]) -> dict[int, int]:
        rows = self._conn.execute(
            "SELECT partition, next_offset FROM subscriber_positions WHERE grp = ? AND topic = ?",
            (self.group, self.topic),
        )
        return {p: o for p, o in rows if p in partitions}

    def save(self, positions: dict[int, int]) -> None:
        self._conn.executemany(
            "INSERT INTO subscriber_positions VALUES (?, ?, ?, ?) ON CONFLICT (grp, topic, partition) "
            "DO UPDATE SET next_offset = excluded.next_offset",
            [(self.group, self.topic, p, o) for p, o in positions.items()],
        )

    def close(self) -> None:
        self._conn.close()
