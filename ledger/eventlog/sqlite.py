"""The embedded event log: one SQLite file, the zero-setup default.

Same semantics as the Kafka topic: per-partition offsets from 0, Kafka's key → partition
function, CreateTime-like timestamps. WAL mode lets readers in other processes follow while
one writer appends; ``BEGIN IMMEDIATE`` takes the write lock before the next offsets are
read, so concurrent appenders (threads or processes) never produce gaps or duplicates.
Several topics (the event topic, its dead-letter topic) share one file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from base64 import b64decode, b64encode
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

from ledger.eventlog.base import (
    AppendError,
    EventLog,
    EventLogUnavailable,
    Headers,
    LogRecord,
    Position,
    Start,
    StoredRecord,
)
from ledger.eventlog.partitioning import partition_for_key
from ledger.settings import Settings

__all__ = ["SqliteEventLog"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log_topic (
    topic TEXT PRIMARY KEY,
    partitions INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS log_record (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    key BLOB,
    value BLOB,
    headers TEXT,
    timestamp_ms INTEGER NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS log_record_time ON log_record (topic, partition, timestamp_ms);
"""
_INSERT = (
    'INSERT INTO log_record (topic, partition, "offset", key, value, headers, timestamp_ms) '
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_EDGE = 'SELECT {}("offset") FROM log_record WHERE topic = ? AND partition = ?'
_SELECT = (
    'SELECT "offset", key, value, headers, timestamp_ms FROM log_record '
    'WHERE topic = ? AND partition = ? AND "offset" >= ? AND "offset" < ? ORDER BY "offset" LIMIT ?'
)
_PAGE = 5_000  # rows per query while reading: bounded memory, few round trips
_IDLE_SLEEP_S = 0.02  # how often an idle subscription looks for new rows


class SqliteEventLog(EventLog):
    """EventLog on a topic in a SQLite file; ``partitions`` is fixed by the first opener."""

    def __init__(
        self,
        path: str | Path,
        topic: str = "task-events",
        *,
        partitions: int = 6,
        poll_timeout_ms: int = 500,
        busy_timeout_ms: int = 30_000,
        create: bool = True,
    ) -> None:
        """``create=False`` opens for reading only: nothing is created (no directory, file,
        table or topic), and a missing file is ``EventLogUnavailable`` naming it."""
        self.path, self.topic = Path(path), topic
        self._poll_timeout_ms = poll_timeout_ms
        self._lock = threading.Lock()  # one connection, shared by this instance's threads
        self._closed = False
        self._conn = self._connect(busy_timeout_ms, create)
        try:
            self.partitions = self._ensure_topic(partitions) if create else self._topic_partitions(partitions)
        except sqlite3.Error as exc:
            self.close()
            raise EventLogUnavailable(f"SQLite event log {self.path} is not usable: {exc}") from exc
        except EventLogUnavailable:
            self.close()
            raise

    def _connect(self, busy_timeout_ms: int, create: bool) -> sqlite3.Connection:
        if not create and not self.path.is_file():
            raise EventLogUnavailable(f"no ledger event log in {self.path} yet: nothing has been emitted there")
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                f"file:{quote(str(self.path.absolute()))}?mode={'rwc' if create else 'rw'}", uri=True,
                timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False,
            )  # fmt: skip
            if create:
                conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL: a commit survives a process crash, like a Kafka append acknowledged by
            # a broker that has not fsynced yet; only an OS crash can lose the last commits.
            conn.execute("PRAGMA synchronous=NORMAL")
        except (OSError, sqlite3.Error) as exc:
            message = f"SQLite event log {self.path} cannot be opened: {exc}"
            raise EventLogUnavailable(message) from exc
        return conn

    @classmethod
    def from_settings(cls, settings: Settings, topic: str | None = None, *, create: bool = True) -> SqliteEventLog:
        """The log in ``<data_dir>/events.db``; ``topic`` overrides (e.g. ``<topic>.dlq``)."""
        return cls(
            settings.data_dir / "events.db",
            topic or settings.topic,
            partitions=settings.partitions,
            poll_timeout_ms=settings.consumer_poll_timeout_ms,
            create=create,
        )

    def _topic_partitions(self, partitions: int) -> int:
        """The topic's partition count, read only; ``partitions`` for a topic never written
        (it holds nothing to read)."""
        with self._lock:
            tables = self._conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'log_topic'").fetchone()
            if not tables[0]:
                raise EventLogUnavailable(f"no ledger event log in {self.path} yet: nothing has been emitted there")
            row = self._conn.execute("SELECT partitions FROM log_topic WHERE topic = ?", (self.topic,)).fetchone()
        return partitions if row is None else int(row[0])

    def _ensure_topic(self, partitions: int) -> int:
        with self._lock:
            self._conn.executescript(_SCHEMA)
            self._conn.execute(
                "INSERT OR IGNORE INTO log_topic (topic, partitions) VALUES (?, ?)",
                (self.topic, partitions),
            )
            row = self._conn.execute(
                "SELECT partitions FROM log_topic WHERE topic = ?", (self.topic,)
            ).fetchone()
        return int(row[0])

    # -- appending -----------------------------------------------------------------------

    def append(self, records: Sequence[LogRecord]) -> list[Position]:
        """All records in one transaction: either all are stored or none is."""
        if not records:
            return []
        count, topic = self.partitions, self.topic
        keys = [record.key.encode() for record in records]
        parts = [partition_for_key(key, count) for key in keys]
        now_ms = time.time_ns() // 1_000_000
        try:
            with self._lock:
                if self._closed:
                    raise sqlite3.ProgrammingError("the log is closed")
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    nexts = {p: self._next_offset(p) for p in set(parts)}
                    positions = []
                    for p in parts:
                        positions.append(Position(p, nexts[p]))
                        nexts[p] += 1
                    self._conn.executemany(_INSERT, [
                        (topic, pos.partition, pos.offset, key, rec.value,
                         _encode_headers(rec.headers), now_ms)
                        for pos, key, rec in zip(positions, keys, records, strict=True)
                    ])  # fmt: skip
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise AppendError(
                f"{len(records)} records were not appended to topic {topic!r} in {self.path}: {exc}"
            ) from exc
        return positions

    def _next_offset(self, partition: int) -> int:
        (last,) = self._conn.execute(_EDGE.format("MAX"), (self.topic, partition)).fetchone()
        return 0 if last is None else int(last) + 1

    # -- reading -------------------------------------------------------------------------

    def _read_ranges(self, ranges: dict[int, tuple[int, int]]) -> Iterator[StoredRecord]:
        for partition, (first, last) in ranges.items():
            while first < last:
                page = self._page(partition, first, last, _PAGE)
                if not page:
                    break
                yield from page
                first = page[-1].offset + 1

    def subscribe(
        self,
        start: Start = "end",
        *,
        stop_event: threading.Event | None = None,
        poll_timeout_ms: int | None = None,
    ) -> Iterator[list[StoredRecord]]:
        """Follow every partition from ``start`` (resolved now). New rows are looked for
        every 20 ms; an empty batch is yielded after ``poll_timeout_ms`` without any."""
        begin = self.resolve(start)
        timeout = self._poll_timeout_ms if poll_timeout_ms is None else poll_timeout_ms
        return self._follow(begin, stop_event or threading.Event(), timeout / 1000)

    def _follow(
        self, positions: dict[int, int], stop_event: threading.Event, timeout_s: float
    ) -> Iterator[list[StoredRecord]]:
        while not stop_event.is_set():
            deadline = time.monotonic() + timeout_s
            batch = self._poll(positions)
            while not batch and not stop_event.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                stop_event.wait(min(_IDLE_SLEEP_S, left))
                batch = self._poll(positions)
            yield batch

    def _poll(self, positions: dict[int, int]) -> list[StoredRecord]:
        batch: list[StoredRecord] = []
        for partition, offset in positions.items():
            page = self._page(partition, offset, None, _PAGE)
            if page:
                positions[partition] = page[-1].offset + 1
                batch.extend(page)
        return batch

    def _page(self, partition: int, first: int, last: int | None, limit: int) -> list[StoredRecord]:
        upper = (1 << 62) if last is None else last
        with self._lock:
            self._check_open()
            params = (self.topic, partition, first, upper, limit)
            rows = self._conn.execute(_SELECT, params).fetchall()
        topic = self.topic
        return [
            StoredRecord(topic, partition, offset, key, value, _decode_headers(headers), ts)
            for offset, key, value, headers, ts in rows
        ]

    # -- offsets -------------------------------------------------------------------------

    def _per_partition(self, select: str, *params: object) -> dict[int, int | None]:
        """One indexed look-up per partition: a GROUP BY would scan the whole topic."""
        with self._lock:
            self._check_open()
            run = self._conn.execute
            return {
                p: run(select, (self.topic, p, *params)).fetchone()[0]
                for p in range(self.partitions)
            }

    def end_offsets(self) -> dict[int, int]:
        found = self._per_partition(_EDGE.format("MAX"))
        return {p: 0 if last is None else last + 1 for p, last in found.items()}

    def beginning_offsets(self) -> dict[int, int]:
        found = self._per_partition(_EDGE.format("MIN"))
        return {p: 0 if first is None else first for p, first in found.items()}

    def offsets_for_time(self, timestamp_ms: int) -> dict[int, int]:
        found = self._per_partition(_EDGE.format("MIN") + " AND timestamp_ms >= ?", timestamp_ms)
        ends = self.end_offsets()
        return {p: ends[p] if first is None else first for p, first in found.items()}

    def partition_for(self, key: str) -> int:
        return partition_for_key(key.encode(), self.partitions)

    # -- lifecycle -----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise EventLogUnavailable(f"SQLite event log {self.path} ({self.topic!r}) is closed")

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()


def _encode_headers(headers: Headers) -> str | None:
    """JSON ``[[name, base64 value], ...]``; NULL for none (the common case costs nothing)."""
    if not headers:
        return None
    return json.dumps([[name, b64encode(value).decode()] for name, value in headers])


def _decode_headers(encoded: str | None) -> Headers:
    if not encoded:
        return ()
    return tuple((name, b64decode(value)) for name, value in json.loads(encoded))
