"""The alert runner over several partitions, killed (kill -9 of a real ``ledger alerts run``)
while a notification is in flight: after the restart the partitions are read in another
interleaving than before the crash, and the log's clock with them. A transition already
posted must stand (repeated with its key, never contradicted by a decision taken afresh),
so its resolution still comes.

The embedded backend, whose reads are deterministic (a poll takes each partition in turn),
makes the two interleavings certain: before the crash, the task stuck in partition 0 is
noticed when partition 1's later event moves the clock; after it, partition 0 is read first,
and the task's own finish comes before the clock passes its deadline."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ledger.bootstrap import build_event_log
from ledger.consumers.alerts import AlertState
from ledger.domain.events import AnyEvent, Emitter, TaskStarted, TaskSucceeded
from ledger.eventlog.partitioning import partition_for_key
from ledger.settings import load_settings
from tests.faults.processes import kill, start
from tests.streams import append_all
from tests.webhooks import Receiver, webhook_receiver

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
EMITTER = Emitter(host="test", pid=1)
SLOW, LATER = "slow-1", "later-1"  # in partitions 0 and 1 of two


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def wait_until(check: object, process: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 60
    while not callable(check) or not check():
        assert process.poll() is None, process.stderr.read() if process.stderr else "the runner exited"
        assert time.monotonic() < deadline, f"waited 60 s for {what}"
        time.sleep(0.02)


def positions(state: Path) -> dict[int, int]:
    return AlertState(state).positions if state.exists() else {}


def test_a_posted_transition_stands_when_the_restart_reads_the_partitions_in_another_order(
    tmp_path: Path,
) -> None:
    settings = load_settings(backend="embedded", data_dir=tmp_path / "data", partitions=2)
    assert (partition_for_key(SLOW.encode(), 2), partition_for_key(LATER.encode(), 2)) == (0, 1)
    state, rules = tmp_path / "state.json", tmp_path / "alerts.toml"
    args = ("alerts", "run", "--rules", str(rules), "--state", str(state), "--from-beginning")

    def event(kind: type[TaskStarted | TaskSucceeded], task: str, seconds: float) -> AnyEvent:
        return kind(task_id=task, task_name="n", occurred_at=at(seconds), emitter=EMITTER)

    with build_event_log(settings) as log, webhook_receiver() as receiver:
        rules.write_text(f'[[rule]]\nname = "stuck"\nwhen = "stuck"\nafter = "40s"\nwebhook = "{receiver.url}"\n')
        append_all(log, [event(TaskStarted, SLOW, 0)])
        first = start(settings, *args)
        wait_until(lambda: positions(state).get(0) == 1, first, "the first event in the state")
        receiver.hold(0)
        append_all(log, [event(TaskStarted, LATER, 100)])  # moves the clock: the slow task is stuck
        wait_until(lambda: receiver.arrived >= 1, first, "the stuck notification")
        kill(first)  # kill -9 with "stuck fired" in flight
        receiver.release.set()
        receiver.wait_for(1)
        receiver.hold_at = None
        append_all(log, [event(TaskSucceeded, SLOW, 50)])  # partition 0: read first on restart
        second = start(settings, *args)
        wait_until(lambda: positions(state) == {0: 2, 1: 1}, second, "every event handled")
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0, second.stderr.read() if second.stderr else ""
    assert said(receiver) == [("stuck", "fired", SLOW), ("stuck", "resolved", SLOW)]
    first_posts = {p.key: p.body for p in reversed(receiver.posts)}
    assert all(p.body == first_posts[p.key] for p in receiver.posts)  # a repeat is the same notification


def said(receiver: Receiver) -> list[tuple[str, str, str]]:
    """The distinct notifications, in the order of their first post."""
    firsts = {p.key: p.body for p in reversed(receiver.posts)}
    return [(firsts[k]["rule"], firsts[k]["transition"], firsts[k]["subject"])
            for k in dict.fromkeys(p.key for p in receiver.posts)]  # fmt: skip
