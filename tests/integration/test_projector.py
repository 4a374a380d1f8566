"""The projector against both backends: embedded (SQLite log + views) and the real Kafka
broker + PostgreSQL server."""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from ledger.bootstrap import build_event_log, build_projector
from ledger.consumers.deadletter import dead_letter_topic, read_dead_letter
from ledger.domain.events import TaskEvent
from ledger.eventlog.base import EventLog, LogRecord
from ledger.projections.store import ViewWriter
from ledger.settings import Settings
from tests.streams import T0, append_all, assert_views_match_fold, expected_views, project_all, stream

ROOT = Path(__file__).resolve().parents[2]


def test_a_stream_with_retries_duplicates_and_late_events_projects_to_the_fold(
    settings: Settings, log: EventLog, store: ViewWriter
) -> None:
    events = stream(seed=1, tasks=300)
    positions = append_all(log, events)
    project_all(settings)
    assert_views_match_fold(store, events, positions)
    assert sum(store.offsets("views", log.topic).values()) == len(events)


def test_the_same_batch_applied_twice_changes_nothing(settings: Settings, log: EventLog, store: ViewWriter) -> None:
    events = stream(seed=2, tasks=50)
    positions = append_all(log, events)
    records = list(log.read("beginning"))
    first, second = build_projector(settings, store=store), build_projector(settings)
    for projector in (first, second):  # both read the stored offsets: nothing applied yet
        projector._on_assigned(set(range(log.partitions)))
    first.process(records)
    rows = store.load_tasks({e.task_id for e in events if isinstance(e, TaskEvent)})
    second.process(records)  # the same batch again, from a projector that did not see it
    assert second.stats.refused_batches == 1 and second.stats.events == 0
    second.store.close()
    again = build_projector(settings, store=store)
    again._on_assigned(set(range(log.partitions)))
    again.process(records)  # and redelivered to a projector that knows the stored offsets
    assert again.stats.events == 0
    assert store.load_tasks(rows) == rows
    assert_views_match_fold(store, events, positions)


CRASHING_PROJECTOR = textwrap.dedent(
    """
    import os, signal, sys
    from ledger.bootstrap import build_projector
    from ledger.settings import Settings
    settings = Settings.model_validate_json(sys.argv[1])
    def crash(stats):  # right after the database commit, before anything else
        if stats.batches == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)
    projector = build_projector(settings)
    projector.add_commit_listener(crash)
    projector.run_until_caught_up()
    """
)


def test_a_kill_right_after_the_commit_then_a_restart_loses_and_doubles_nothing(
    settings: Settings, log: EventLog, store: ViewWriter
) -> None:
    settings = settings.model_copy(update={"projector_batch_size": 100, "projector_instance_id": "crashy"})
    events = stream(seed=3, tasks=200)
    positions = append_all(log, events)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for batches in (1, 3):
        done = subprocess.run(
            [sys.executable, "-c", CRASHING_PROJECTOR, settings.model_dump_json(), str(batches)],
            env=env,
            timeout=120,
            capture_output=True,
        )
        assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    assert 0 < sum(store.offsets("views", log.topic).values()) < len(events)
    project_all(settings)  # the same static member id: it gets its partitions back at once
    assert_views_match_fold(store, events, positions)


def test_shuffled_delivery_across_restarts_gives_the_same_rows(
    settings: Settings, log: EventLog, store: ViewWriter
) -> None:
    events = stream(seed=4, tasks=150)
    shuffled = events[:]
    random.Random(7).shuffle(shuffled)
    half = len(shuffled) // 2
    positions = append_all(log, shuffled[:half])
    project_all(settings)  # a first projector sees half, then stops
    positions += append_all(log, shuffled[half:])
    project_all(settings)  # a restarted one sees the rest
    tasks, _ = expected_views(shuffled, positions)  # offsets and first_seen follow the log order
    assert store.load_tasks(tasks) == tasks
    in_rank_order, _ = expected_views(events, None)
    strip = lambda s: dataclasses.replace(s, last_offset=None, first_seen=T0)  # noqa: E731 - positions differ
    assert {t: strip(s) for t, s in tasks.items()} == {t: strip(s) for t, s in in_rank_order.items()}


def test_malformed_records_go_to_the_dead_letter_topic_and_the_rest_is_projected(
    settings: Settings, log: EventLog, store: ViewWriter
) -> None:
    events = stream(seed=5, tasks=40, duplicates=0, late=0)
    positions = append_all(log, events[:30])
    bad = [
        LogRecord("k1", b"\xff\xfenot json"),
        LogRecord("k2", b'{"version": 1, "type": "task.started"}'),
        LogRecord("k3", b'{"version": 9, "type": "task.started", "task_id": "x"}'),
    ]
    bad_positions = log.append(bad)
    positions += append_all(log, events[30:])
    project_all(settings)
    assert_views_match_fold(store, events, positions)
    dlq = build_event_log(settings, topic=dead_letter_topic(log.topic))
    letters = [read_dead_letter(r) for r in dlq.read("beginning")]
    dlq.close()
    assert sorted((d.partition, d.offset) for d in letters) == sorted((p.partition, p.offset) for p in bad_positions)
    reasons = {d.record.key: d.reason for d in letters}
    assert "JSON" in reasons[b"k1"] or "json" in reasons[b"k1"]
    assert "task_id" in reasons[b"k2"]
    assert "version" in reasons[b"k3"]
