"""A subscriber process killed with kill -9 inside a body: the README's promise "the group's
position is saved once this body has run", held against a real crash on both backends."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from ledger.bootstrap import build_event_log
from ledger.domain.events import AnyEvent
from ledger.settings import Settings
from tests.faults.processes import kill, start
from tests.helpers import unique_name
from tests.streams import append_all, stream

CHILD = """
import os, sys, time
from ledger.subscribe import subscribe

journal, group, mode, save_every = sys.argv[1:5]

def record(line):
    with open(journal, "a") as out:          # durable before the next step
        out.write(line + "\\n"); out.flush(); os.fsync(out.fileno())

handled = 0
with subscribe(group, start="beginning" if mode == "first" else "stored", save_every=int(save_every)) as events:
    for event in events:
        if mode == "first" and handled == 4:
            record(f"inside {event.event_id}")
            time.sleep(3600)                 # killed here, inside the 5th body
        record(f"handled {event.event_id}")
        handled += 1
"""


def journal_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def wait_for(process: subprocess.Popen[str], path: Path, last: str) -> list[str]:
    """The journal once it holds the line ``last`` (the child must stay alive meanwhile)."""
    deadline = time.monotonic() + 120
    while last not in (lines := journal_lines(path)):
        if process.poll() is not None:
            raise AssertionError(process.stderr.read() if process.stderr else "child exited")
        if time.monotonic() > deadline:
            kill(process)
            raise AssertionError(f"journal stuck at {lines}: {process.stderr.read() if process.stderr else ''}")
        time.sleep(0.05)
    return lines


def run_and_restart(settings: Settings, tmp_path: Path, save_every: int) -> tuple[list[str], list[str]]:
    """A child killed with kill -9 inside the 5th body, then one restarted in its group:
    the ids of the events in log order, and what the restarted child handled."""
    settings = settings.model_copy(update={"partitions": 1, "consumer_session_timeout_ms": 6000})
    events: list[AnyEvent] = stream(seed=61, tasks=4, periodic=0, duplicates=0, late=0)
    with build_event_log(settings) as log:  # one partition: one order to check against
        append_all(log, events)
    ids = [str(e.event_id) for e in events]
    assert len(ids) > 6
    group = unique_name("crash")

    first_journal = tmp_path / "first.log"
    first = start(settings, str(first_journal), group, "first", str(save_every), script=CHILD)
    try:
        lines = wait_for(first, first_journal, f"inside {ids[4]}")
    finally:
        kill(first)  # kill -9 while the 5th body runs
    assert lines == [f"handled {i}" for i in ids[:4]] + [f"inside {ids[4]}"]

    second_journal = tmp_path / "second.log"
    second = start(settings, str(second_journal), group, "restart", str(save_every), script=CHILD)
    try:
        again = wait_for(second, second_journal, f"handled {ids[-1]}")
    finally:
        kill(second)
    return ids, again


def test_a_subscriber_killed_inside_a_body_resumes_at_that_event(settings: Settings, tmp_path: Path) -> None:
    ids, again = run_and_restart(settings, tmp_path, save_every=1)
    # the 5th comes first, none of the four handled bodies comes again, nothing is skipped
    assert again == [f"handled {i}" for i in ids[4:]]


def test_with_save_every_n_a_crash_redelivers_at_most_n_minus_1_handled_events(
    settings: Settings, tmp_path: Path
) -> None:
    ids, again = run_and_restart(settings, tmp_path, save_every=3)
    # saved after the 3rd body (and before each poll): the 4th may come again, then the 5th
    assert again in ([f"handled {i}" for i in ids[3:]], [f"handled {i}" for i in ids[4:]])
