"""The SDK on the real embedded log: what a worker writes, a reader decodes and folds."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.codec import Codec, generate_cipher_key
from ledger.domain.events import TaskEvent
from ledger.domain.fold import fold
from ledger.domain.periodic import fold_periodic
from ledger.domain.statuses import TaskStatus
from ledger.eventlog.sqlite import SqliteEventLog
from ledger.sdk import Ledger, Retry
from ledger.wire import decode


def test_tracked_tasks_written_to_sqlite_fold_back(tmp_path: Path) -> None:
    codec = Codec.with_key(generate_cipher_key(), compress=True)
    with SqliteEventLog(tmp_path / "events.db", "events", partitions=3) as log:
        ledger = Ledger(log, codec, worker="celery@it")

        @ledger.task("tasks.add")
        def add(x: int, y: int) -> int:
            return x + y

        assert add(2, 3, task_id="sum-1") == 5  # type: ignore[call-arg]
        with pytest.raises(Retry), ledger.track("flaky-1", "tasks.flaky"):
            raise Retry(countdown=1)
        with ledger.track("flaky-1", "tasks.flaky", attempt=1) as run:
            run.result = "ok"
        ledger.register_periodic("nightly", "tasks.add", 86_400)
        ledger.delay_periodic("nightly", lambda: "sum-1")
        records = list(log.read("beginning"))
        assert ledger.emit_errors == 0

    events = [(decode(record, codec), record.offset) for record in records]
    assert len(events) == 8
    by_task: dict[str, list[tuple[TaskEvent, int | None]]] = {}
    for event, offset in events:
        if isinstance(event, TaskEvent):
            by_task.setdefault(event.task_id, []).append((event, offset))
    total = fold(by_task["sum-1"])
    assert total is not None and (total.status, total.result, total.args) == (
        TaskStatus.DONE,
        5,
        [2, 3],
    )
    assert total.worker == "celery@it"
    flaky = fold(by_task["flaky-1"])
    assert flaky is not None and (flaky.status, flaky.retries, flaky.result) == (
        TaskStatus.DONE,
        1,
        "ok",
    )
    periodic = fold_periodic([e for e, _ in events if not isinstance(e, TaskEvent)])
    assert periodic is not None and (periodic.total_run_count, periodic.last_run_task_id) == (
        1,
        "sum-1",
    )
    partitions = {record.partition for record in records if record.key == b"flaky-1"}
    assert len(partitions) == 1  # one task's events share a partition
