"""The alert runner as a real process on Kafka, stopped with SIGTERM and killed with kill -9
while a notification is in flight, with events still arriving: every transition reaches the
local webhook server, none is missed, none repeats across the graceful restart, and the one
the crash repeats carries the key (and the body) of its first post."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from ledger.bootstrap import build_codec, build_event_log
from ledger.settings import Settings
from tests.faults.conftest import ReliabilityRow
from tests.faults.processes import kill, start
from tests.helpers import unique_name
from tests.streams import append_all
from tests.webhooks import Receiver, alert_history, expected_keys, rules_toml, webhook_receiver

pytestmark = [pytest.mark.faults, pytest.mark.kafka]


def runner(settings: Settings, rules: Path, state: Path, group: str) -> subprocess.Popen[str]:
    return start(settings, "alerts", "run", "--rules", str(rules), "--group", group, "--state", str(state),
                 "--from-beginning")  # fmt: skip


def said_by(body: dict[str, Any]) -> str:
    """The "rule fired" or "rule resolved" of a JSON body, or of a Slack body's text."""
    if "rule" in body:
        return f"{body['rule']} {body['transition']}"
    return str(body["text"]).split(" for ")[0].split(" ", 1)[1]


def held_post(receiver: Receiver, process: subprocess.Popen[str], at: int) -> None:
    """Wait until the runner's post number ``at + 1`` is in the server, held unanswered."""
    deadline = time.monotonic() + 120
    while receiver.arrived <= at:
        assert process.poll() is None, process.stderr.read() if process.stderr else "runner exited"
        assert time.monotonic() < deadline, f"{receiver.arrived} posts arrived, waiting for {at + 1}"
        time.sleep(0.05)


def test_a_restarted_runner_posts_every_transition_and_repeats_only_with_the_same_key(
    kafka_settings: Settings, tmp_path: Path, report: list[ReliabilityRow]
) -> None:
    settings = kafka_settings.model_copy(update={"partitions": 1})  # one order: the transitions are known exactly
    history = alert_history(120)
    half = len(history) // 2
    group, state, rules = unique_name("alerts"), tmp_path / "state.json", tmp_path / "alerts.toml"
    with build_event_log(settings) as log, webhook_receiver() as receiver:
        rules.write_text(rules_toml(receiver.url))
        append_all(log, history[:half])

        receiver.hold(10)  # 1. SIGTERM while post 11 is in flight: it completes, the runner exits 0
        first = runner(settings, rules, state, group)
        held_post(receiver, first, 10)
        first.send_signal(signal.SIGTERM)
        receiver.release.set()
        assert first.wait(60) == 0, first.stderr.read() if first.stderr else ""
        graceful = len(receiver.posts)

        append_all(log, history[half:])  # more events arrive while the runner is down and back
        receiver.hold(graceful + 15)  # 2. kill -9 while a post is in flight: the server keeps it
        second = runner(settings, rules, state, group)
        held_post(receiver, second, graceful + 15)
        kill(second)
        receiver.release.set()
        receiver.wait_for(graceful + 16)
        crashed = len(receiver.posts)
        receiver.hold_at = None

        expected = expected_keys(log, build_codec(settings), rules_toml(receiver.url))
        third = runner(settings, rules, state, group)  # 3. to the end
        try:
            posts = receiver.wait_for_keys(len(expected))
        finally:
            third.send_signal(signal.SIGTERM)
            assert third.wait(60) == 0
    keys = [p.key for p in posts]
    said = {said_by(p.body) for p in posts}
    assert said >= {f"{rule} {kind}" for rule in ("billing-failed", "failure-burst", "stuck")
                    for kind in ("fired", "resolved")}  # fmt: skip
    first_posts = {p.key: p.body for p in reversed(posts)}
    assert list(dict.fromkeys(keys)) == expected  # every transition, in order: none missed
    assert len(set(keys[:graceful])) == graceful and not set(keys[:graceful]) & set(keys[graceful:])
    repeats = [p for i, p in enumerate(posts) if p.key in keys[:i]]
    repeated = [p.key for p in repeats]
    assert keys[crashed - 1] in repeated  # the post the crash cut off came again…
    assert set(repeated) <= set(keys[graceful:crashed]) and len(set(repeated)) == len(repeated)  # …only those
    assert all(p.body == first_posts[p.key] for p in repeats)  # the same notification, the same key
    injected = f"SIGTERM, kill -9 mid-post ({len(repeats)} repeat(s), same key)"
    report.append(ReliabilityRow("alerts: runner restarts", injected, len(expected),
                                 len(set(expected) - set(keys)), 0))  # fmt: skip
