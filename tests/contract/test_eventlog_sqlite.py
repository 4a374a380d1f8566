"""The EventLog contract on the embedded SQLite log, plus what only a shared file must do."""

from __future__ import annotations

import multiprocessing
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from ledger.eventlog.base import AppendError, EventLog, EventLogUnavailable, LogRecord
from ledger.eventlog.sqlite import SqliteEventLog
from ledger.settings import Settings
from tests.contract.eventlog_contract import (
    PARTITIONS,
    POLL_MS,
    EventLogContract,
    collect,
    records,
    values,
)


def _append_batches(path: Path, name: str, batches: int, size: int, go: Any = None) -> None:
    """Runs in a child process: appends ``batches`` batches of ``size`` records, starting
    when ``go`` is set, so that the processes really contend for the write lock."""
    log = SqliteEventLog(path, "events", partitions=PARTITIONS)
    if go is not None:
        go.wait(30)
    for batch in range(batches):
        log.append(records(f"{name}{batch}", size))
    log.close()


class TestSqliteEventLog(EventLogContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> None:
        self.path = tmp_path / "not-yet" / "events.db"  # parent directories are created

    def make_log(self, partitions: int) -> EventLog:
        return SqliteEventLog(self.path, "events", partitions=partitions, poll_timeout_ms=POLL_MS)

    def test_processes_appending_concurrently_get_gap_free_offsets(self) -> None:
        self.open_log()  # creates the file and topic before the race
        spawn = multiprocessing.get_context("spawn")
        go = spawn.Event()
        workers = [
            spawn.Process(target=_append_batches, args=(self.path, name, 800, 3, go))
            for name in ("left", "right", "third")
        ]
        for worker in workers:
            worker.start()
        go.set()
        for worker in workers:
            worker.join(timeout=60)
            assert worker.exitcode == 0
        found = list(self.open_log().read())
        assert len(found) == len({r.value for r in found}) == 3 * 800 * 3
        offsets = defaultdict(list)
        for record in found:
            offsets[record.partition].append(record.offset)
        for partition_offsets in offsets.values():
            assert partition_offsets == list(range(len(partition_offsets)))

    def test_a_reader_sees_rows_appended_by_another_process(self) -> None:
        log = self.open_log()
        child = multiprocessing.get_context("spawn").Process(
            target=_append_batches, args=(self.path, "child", 2, 10)
        )
        found = collect(log, "end", 20, before_first=child.start)
        child.join(timeout=30)
        assert values(found) == values(records("child0", 10) + records("child1", 10))

    def test_append_is_all_or_nothing(self) -> None:
        log = self.open_log()
        log.append(records("ok", 5))
        bad = [*records("lost", 5), LogRecord("k", object())]  # type: ignore[arg-type]
        with pytest.raises(AppendError, match="6 records were not appended"):
            log.append(bad)
        assert sum(log.end_offsets().values()) == 5
        assert len(log.append(records("after", 5))) == 5  # the log is still usable

    def test_topics_share_one_file_independently(self) -> None:
        log = self.open_log()
        dead = SqliteEventLog(self.path, "events.dlq", partitions=1)
        self._opened.append(dead)
        log.append(records("main", 10))
        dead.append([LogRecord("bad", b"undecodable")])
        assert [r.value for r in dead.read()] == [b"undecodable"]
        assert sum(log.end_offsets().values()) == 10

    def test_the_first_opener_fixes_the_partition_count(self) -> None:
        assert self.open_log(partitions=PARTITIONS).partitions == PARTITIONS
        assert self.open_log(partitions=PARTITIONS + 5).partitions == PARTITIONS

    def test_appends_from_threads_share_one_instance(self) -> None:
        log = self.open_log()

        def append_some(name: str) -> None:
            for i in range(20):
                log.append(records(f"{name}-{i}", 5))

        threads = [threading.Thread(target=append_some, args=(f"t{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(log.end_offsets().values()) == 4 * 20 * 5

    def test_from_settings_uses_the_data_dir(self, tmp_path: Path) -> None:
        settings = Settings(data_dir=tmp_path / "ledger", topic="from-settings", partitions=2)
        log = SqliteEventLog.from_settings(settings)
        self._opened.append(log)
        assert log.path == tmp_path / "ledger" / "events.db"
        assert (log.topic, log.partitions) == ("from-settings", 2)
        assert SqliteEventLog.from_settings(settings, topic="x.dlq").topic == "x.dlq"

    def test_an_unusable_path_raises_unavailable_naming_it(self, tmp_path: Path) -> None:
        blocker = tmp_path / "a-file"
        blocker.write_text("not a directory")
        with pytest.raises(EventLogUnavailable, match="a-file"):
            SqliteEventLog(blocker / "events.db")
