"""``ledger project --processes N`` on the real Kafka and PostgreSQL: the members share the
partitions, project every event once, stop together on SIGTERM, and one that is killed
stops the others and fails the command."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ledger.bootstrap import build_event_log, build_view_reader
from ledger.domain.events import AnyEvent, TaskEvent
from ledger.settings import Settings, load_settings
from tests.cli import ledger
from tests.e2e.test_projector_metrics import free_port, scrape, total
from tests.faults.processes import assert_equal_to_a_clean_rebuild, environment, history_ids, kill, start
from tests.streams import append_all, stream

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture
def settings(kafka_topic: str, pg_schema: str, kafka_bootstrap: str, postgres_dsn: str) -> Settings:
    return load_settings(
        backend="kafka+postgres", topic=kafka_topic, postgres_schema=pg_schema, partitions=6,
        kafka_bootstrap_servers=kafka_bootstrap, postgres_dsn=postgres_dsn, consumer_poll_timeout_ms=200,
        projector_batch_size=50, projector_group=f"g-{kafka_topic}",
    )  # fmt: skip


def fill(settings: Settings, seed: int) -> list[AnyEvent]:
    """A simulated fleet's events, on the topic."""
    log = build_event_log(settings)
    try:
        events = stream(seed=seed, tasks=120, duplicates=0, late=0)
        append_all(log, events)
    finally:
        log.close()
    return events


def children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def wait_for(condition: Callable[[], bool], what: str, process: subprocess.Popen[str],
             seen: Callable[[], str] = lambda: "", timeout: float = 120) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the command exited: {process.stderr.read() if process.stderr else ''}"
        assert time.monotonic() < deadline, f"timed out waiting for {what} {seen()}"
        time.sleep(0.2)


def test_two_processes_project_every_event_once_until_caught_up(settings: Settings) -> None:
    events = fill(settings, seed=81)
    done = subprocess.run([sys.executable, "-m", "ledger", "project", "--processes", "2", "--until-caught-up"],
                          env=environment(settings), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("ledger project: ") == 3  # the command, then each member
    assert "(2 processes)" in done.stderr.splitlines()[0]
    ids = history_ids(settings)
    assert len(ids) == len(set(ids)) == len(events)
    reader = build_view_reader(settings)
    try:
        assert sum(reader.status_counts().values()) == len({e.task_id for e in events if isinstance(e, TaskEvent)})
    finally:
        reader.close()
    assert_equal_to_a_clean_rebuild(settings)  # the rows one projector alone makes


def test_members_share_the_partitions_and_stop_together_on_sigterm(settings: Settings) -> None:
    port = free_port()
    build_event_log(settings).close()  # the topic, before the members join
    logged = settings.model_copy(update={"projector_metrics_port": port, "log_level": "INFO", "log_format": "json"})
    command = start(logged, "project", "--processes", "2")
    lines: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: lines.extend(json.loads(line) for line in command.stderr or ()
                                                          if line.startswith("{")), daemon=True)  # fmt: skip
    reader.start()
    try:

        def shared() -> bool:  # the last two assignments: three partitions each, all six between them
            assigned = [frozenset(x["partitions"]) for x in list(lines) if x["message"] == "partitions assigned"]
            last = assigned[-2:]
            return len(last) == 2 and len(last[0]) == len(last[1]) == 3 and not last[0] & last[1]

        wait_for(shared, "the group to share the partitions between both members", command, lambda: str(lines))
        count = len(fill(settings, seed=82))
        members: dict[int, float] = {}

        def every_event_projected() -> bool:
            for member in (0, 1):  # each member serves its own counters, on the next port
                scraped = scrape(port + member)
                if scraped is not None:
                    members[member] = total(scraped[1], "ledger_events_projected_total")
            return len(members) == 2 and sum(members.values()) == count

        wait_for(every_event_projected, "both members to project every event", command, lambda: f"{members} of {count}")
        assert all(projected > 0 for projected in members.values()), members  # each projected its partitions
        pids = children(command.pid)
        assert len(pids) == 2
        command.send_signal(signal.SIGTERM)
        assert command.wait(timeout=60) == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in pids)  # waited for: gone
        reader.join(timeout=10)
        assert sum(line["message"] == "projector stopped" for line in lines) == 2  # each finished cleanly
    finally:
        kill(command)


def test_a_member_killed_stops_the_others_and_fails_the_command(settings: Settings) -> None:
    fill(settings, seed=83)
    command = start(settings, "project", "--processes", "2")
    try:
        wait_for(lambda: len(children(command.pid)) == 2, "two members", command)
        victim, survivor = sorted(children(command.pid))
        os.kill(victim, signal.SIGKILL)
        assert command.wait(timeout=60) == 1
        stderr = command.stderr.read() if command.stderr else ""
        assert re.search(
            rf"^error: project: member [12] of 2 \(pid {victim}\) was killed by SIGKILL; "
            "the others were stopped$",
            stderr,
            re.MULTILINE,
        ), stderr
        deadline = time.monotonic() + 30
        while Path(f"/proc/{survivor}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)  # reaped by the command before it exited: gone
        assert not Path(f"/proc/{survivor}").exists()
    finally:
        kill(command)


def test_more_than_one_process_on_the_embedded_log_is_one_line(tmp_path: Path) -> None:
    done = ledger("project", "--processes", "2",
                  env={"LEDGER_BACKEND": "embedded", "LEDGER_DATA_DIR": str(tmp_path)})  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "error: --processes: more than 1 needs the Kafka log (LEDGER_BACKEND=kafka+postgres); "
        "the embedded log has one reader"
    )


def test_the_command_killed_takes_its_members_with_it(settings: Settings) -> None:
    fill(settings, seed=84)
    command = start(settings, "project", "--processes", "2")
    try:
        wait_for(lambda: len(children(command.pid)) == 2, "two members", command)
        pids = children(command.pid)
        command.send_signal(signal.SIGKILL)  # nothing can be passed on: the members learn it from the kernel
        command.wait(timeout=30)
        deadline = time.monotonic() + 60
        while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(Path(f"/proc/{pid}").exists() for pid in pids), "a member outlived the killed command"
    finally:
        kill(command)


def test_member_metrics_ports_past_the_last_port_are_one_line() -> None:
    env = {"LEDGER_BACKEND": "kafka+postgres", "LEDGER_PROJECTOR_METRICS_PORT": "65534"}
    done = ledger("project", "--processes", "3", env=env)  # refused before any member starts
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "error: --processes: member metrics ports 65534..65536 go past 65535 "
        "(LEDGER_PROJECTOR_METRICS_PORT is the first member's)"
    )
