"""Projector processes killed with SIGKILL (at random moments and right after a commit)
and stopped with SIGSTOP past their poll interval: nothing lost, nothing doubled."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from itertools import pairwise

import pytest

from ledger.bootstrap import build_ledger, build_view_writer
from ledger.settings import Settings
from ledger.simulate import simulate
from tests.faults.conftest import EVENTS, ReliabilityRow
from tests.faults.processes import assert_equal_to_a_clean_rebuild, catch_up, history_ids, kill, start

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.postgres]

KILL_AFTER_COMMIT = """
import os, signal, sys
from ledger.bootstrap import build_projector
from ledger.settings import load_settings
projector = build_projector(load_settings())
def crash(stats):
    if stats.batches == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)   # the commit is done; nothing after it ran
projector.add_commit_listener(crash)
projector.run_until_caught_up()
"""


def produce(settings: Settings, events: list, acknowledged: list[str], done: threading.Event) -> None:  # type: ignore[type-arg]
    ledger = build_ledger(settings)
    for first in range(0, len(events), 500):
        chunk = events[first : first + 500]
        ledger.emit_many(chunk)
        acknowledged += [str(e.event_id) for e in chunk]
    ledger.close()
    done.set()


def test_sigkill_at_random_moments_while_100k_events_stream_in(
    kafka_settings: Settings, report: list[ReliabilityRow]
) -> None:
    settings = kafka_settings.model_copy(update={"projector_batch_size": 1000, "projector_instance_id": "crashy"})
    build_view_writer(settings).migrate()
    events = simulate(max(EVENTS // 4, 10), seed=7, periodic=3, periodic_runs=20)[:EVENTS]
    acknowledged: list[str] = []
    produced = threading.Event()
    producer = threading.Thread(target=produce, args=(settings, events, acknowledged, produced))
    producer.start()
    rng = random.Random(3)
    kills = 0
    while kills < 12 or not produced.is_set():
        if kills % 3 == 2:  # right after a database commit
            process = start(settings, str(rng.randint(1, 4)), script=KILL_AFTER_COMMIT)
            process.wait(timeout=120)
        else:  # at a random moment, mid-batch or between batches
            process = start(settings, "project")
            time.sleep(rng.uniform(0.5, 2.5))
            kill(process)
        kills += 1
    producer.join(120)
    catch_up(settings)
    ids = history_ids(settings)
    unique = set(acknowledged)
    lost, doubled = len(unique - set(ids)), len(ids) - len(set(ids))
    report.append(ReliabilityRow("crash mid-batch (SIGKILL)", f"{kills} SIGKILLs, 1 in 3 right after a commit",
                                 len(acknowledged), lost, doubled))  # fmt: skip
    assert len(acknowledged) == len(events)
    assert lost == 0 and doubled == 0 and set(ids) == unique
    assert_equal_to_a_clean_rebuild(settings)


ANNOUNCING_PROJECTOR = """
import sys, time
from ledger.bootstrap import build_projector
from ledger.settings import load_settings
projector = build_projector(load_settings())
write = projector.store.write
def announced(changes):
    print("WRITE", flush=True)
    time.sleep(1.0)            # the test stops us here: a batch in hand, not yet written
    write(changes)
projector.store.write = announced
import threading
projector.run(threading.Event())
"""


def test_a_zombie_projector_cannot_overwrite_newer_rows_or_move_offsets_back(
    kafka_settings: Settings, report: list[ReliabilityRow]
) -> None:
    settings = kafka_settings.model_copy(update={"projector_batch_size": 200, "consumer_max_poll_interval_ms": 6000})
    store = build_view_writer(settings)
    store.migrate()
    events = simulate(2000, seed=8, periodic=0)
    ledger = build_ledger(settings)
    ledger.emit_many(events[:3000])
    zombie = start(settings, script=ANNOUNCING_PROJECTOR, LEDGER_LOG_LEVEL="WARNING")
    assert zombie.stdout is not None and zombie.stdout.readline().strip() == "WRITE"
    os.kill(zombie.pid, signal.SIGSTOP)  # frozen with a batch in hand, past its poll interval
    healthy = start(settings, "project")
    samples: list[dict[int, int]] = []
    watching = threading.Event()

    def watch() -> None:
        while not watching.is_set():
            samples.append(store.offsets("views", settings.topic))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    ledger.emit_many(events[3000:])
    ledger.close()
    time.sleep(12)  # the group drops the zombie; the healthy one takes every partition
    os.kill(zombie.pid, signal.SIGCONT)  # the zombie wakes up and tries to write its stale batch
    time.sleep(4)
    kill(zombie)
    kill(healthy)
    assert zombie.stderr is not None
    stderr = zombie.stderr.read()
    catch_up(settings)
    watching.set()
    watcher.join(10)
    backwards = sum(1 for a, b in pairwise(samples) if any(b.get(p, 0) < o for p, o in a.items()))
    ids = history_ids(settings)
    lost = len({str(e.event_id) for e in events} - set(ids))
    injected = "SIGSTOP 12 s with a batch in hand, then SIGCONT"
    report.append(ReliabilityRow("zombie projector (SIGSTOP)", injected, len(events), lost, len(ids) - len(set(ids))))
    assert "batch refused" in stderr, stderr[-2000:]
    assert backwards == 0
    assert sorted(ids) == sorted({str(e.event_id) for e in events})
    assert_equal_to_a_clean_rebuild(settings)
