"""The alert runner in process, on both backends, against a local webhook server: every
transition posted once in order with its idempotency key, a refusing receiver retried (and
visible in the state ``ledger alerts status`` reads), a graceful restart neither misses nor
repeats a notification, failure-group rules fire, resolve and fire again on a reopen."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from ledger.bootstrap import build_codec, build_event_log, build_subscriber
from ledger.consumers.alerts import AlertRunner, AlertState, RunStats
from ledger.consumers.webhook import post
from ledger.domain.alert_rules import parse_rules
from ledger.retry import RetryPolicy
from ledger.settings import Settings
from tests.helpers import unique_name
from tests.streams import append_all
from tests.webhooks import (
    Receiver,
    alert_history,
    cause_fingerprint,
    expected_keys,
    failure_group_history,
    group_rules_toml,
    rules_toml,
    webhook_receiver,
)

FAST = RetryPolicy(first_s=0.01, cap_s=0.05)


def one_partition(settings: Settings, tmp_path: Path) -> tuple[Settings, Path]:
    """One partition: one order of events, so the expected transitions are known exactly."""
    return settings.model_copy(update={"partitions": 1}), tmp_path / "alerts-state.json"


Running = tuple[threading.Thread, threading.Event, list[RunStats]]


def start_runner(settings: Settings, receiver: Receiver, state: Path, group: str, toml: str | None = None) -> Running:
    """As ``ledger alerts run --from-beginning``: from 0 the first time, then the stored position."""
    rules, stored = parse_rules(toml or rules_toml(receiver.url)), AlertState(state)
    subscriber = build_subscriber(
        settings, group=group, start="stored" if stored.positions else "beginning", save_every=10
    )
    runner = AlertRunner(rules, subscriber, stored, post, policy=FAST)
    stop, stats = threading.Event(), []
    thread = threading.Thread(target=lambda: stats.append(runner.run(stop)), daemon=True)
    thread.start()
    return thread, stop, stats


def test_every_transition_is_posted_once_with_its_key_and_refusals_are_retried(
    settings: Settings, tmp_path: Path
) -> None:
    settings, state = one_partition(settings, tmp_path)
    with build_event_log(settings) as log, webhook_receiver(refuse=3) as receiver:
        append_all(log, alert_history(30))
        expected = expected_keys(log, build_codec(settings), rules_toml(receiver.url))
        assert len(expected) > 20
        thread, stop, _ = start_runner(settings, receiver, state, unique_name("alerts"))
        posts = receiver.wait_for(len(expected))
        stop.set()
        thread.join(60)
    assert [p.key for p in posts] == expected and receiver.refused == 3
    kinds = {(p.body.get("rule"), p.body.get("transition")) for p in posts}
    assert {("billing-failed", "fired"), ("billing-failed", "resolved"), ("stuck", "fired"),
            ("stuck", "resolved")} <= kinds  # fmt: skip
    assert any(set(p.body) == {"text"} and "failure-burst" in p.body["text"] for p in posts)  # the Slack body
    record = AlertState(state).deliveries
    assert record["delivered"] == len(expected) and record["failed_attempts"] == 3 and record["pending"] is None


def test_a_graceful_restart_neither_misses_nor_repeats(settings: Settings, tmp_path: Path) -> None:
    settings, state = one_partition(settings, tmp_path)
    group = unique_name("alerts")
    with build_event_log(settings) as log, webhook_receiver() as receiver:
        append_all(log, alert_history(30))
        expected = expected_keys(log, build_codec(settings), rules_toml(receiver.url))
        for stop_after in (5, 15):  # two stops mid-stream (while a post is in flight), then one to the end
            receiver.hold(stop_after)
            thread, stop, _ = start_runner(settings, receiver, state, group)
            receiver.wait_for(stop_after)
            stop.set()
            receiver.release.set()
            thread.join(60)
            assert not thread.is_alive() and len(receiver.posts) < len(expected)
        receiver.hold_at = None
        thread, stop, _ = start_runner(settings, receiver, state, group)
        posts = receiver.wait_for(len(expected))
        stop.set()
        thread.join(60)
    assert [p.key for p in posts] == expected


def test_a_stop_while_a_webhook_is_failing_keeps_the_undelivered_for_the_restart(
    settings: Settings, tmp_path: Path
) -> None:
    settings, state = one_partition(settings, tmp_path)
    group = unique_name("alerts")
    with build_event_log(settings) as log, webhook_receiver() as receiver:
        append_all(log, alert_history(30))
        expected = expected_keys(log, build_codec(settings), rules_toml(receiver.url))
        thread, stop, _ = start_runner(settings, receiver, state, group)
        receiver.wait_for(12)
        receiver.refusing = True
        while receiver.refused < 3:  # the runner is retrying
            time.sleep(0.01)
        stop.set()
        thread.join(60)
        assert not thread.is_alive() and AlertState(state).deliveries["pending"] is not None
        receiver.refusing = False
        thread, stop, _ = start_runner(settings, receiver, state, group)
        posts = receiver.wait_for(len(expected))
        stop.set()
        thread.join(60)
    assert [p.key for p in posts] == expected


def test_a_state_file_behind_the_groups_position_is_reported(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings, state = one_partition(settings, tmp_path)
    group = unique_name("alerts")
    with build_event_log(settings) as log, webhook_receiver() as receiver:
        history = alert_history(10)
        append_all(log, history[:5])
        thread, stop, _ = start_runner(settings, receiver, state, group)
        expected = expected_keys(log, build_codec(settings), rules_toml(receiver.url))
        receiver.wait_for(len(expected))
        while AlertState(state).positions.get(0) != 5:  # the last event handled, maybe without a post
            time.sleep(0.02)
        stop.set()
        thread.join(60)
        state.rename(tmp_path / "kept.json")  # the state file lost: the group's position is kept
        stale = AlertState(state)
        stale.positions[0] = 2  # a stale copy: it holds only the first two events
        stale.save()
        append_all(log, history[5:6])
        with caplog.at_level(logging.WARNING, logger="ledger.consumers.alerts"):
            thread, stop, _ = start_runner(settings, receiver, state, group)
            while AlertState(state).positions.get(0) != 6:
                time.sleep(0.02)
            stop.set()
            thread.join(60)
    warned = [r for r in caplog.records if r.getMessage().startswith("alert state behind")]
    assert [(r.__dict__["from"], r.__dict__["to"]) for r in warned] == [(2, 5)]


def test_failure_group_rules_post_a_new_cause_its_resolution_and_its_reopening(
    settings: Settings, tmp_path: Path
) -> None:
    settings, state = one_partition(settings, tmp_path)
    with build_event_log(settings) as log, webhook_receiver() as receiver:
        append_all(log, failure_group_history(8))
        rules = group_rules_toml(receiver.url)
        expected = expected_keys(log, build_codec(settings), rules)
        thread, stop, _ = start_runner(settings, receiver, state, unique_name("alerts"), rules)
        posts = receiver.wait_for(len(expected))
        stop.set()
        thread.join(60)
    assert [p.key for p in posts] == expected
    first = cause_fingerprint(0)
    mine = [p.body for p in posts if p.body.get("rule") == "new-cause" and p.body["subject"] == first]
    said = [(b["transition"], b["detail"]["reopened"] if b["transition"] == "fired" else b["detail"]["reason"])
            for b in mine]  # fmt: skip
    assert said == [("fired", False), ("resolved", "resolved"), ("fired", True)]
    new_causes = {p.body["subject"] for p in posts if p.body.get("rule") == "new-cause"}
    assert new_causes == {cause_fingerprint(c) for c in range(3)}  # 3 causes, numbers varying: 3 groups
    bursts = [p.body["text"] for p in posts if "text" in p.body]  # the Slack-format rule
    assert bursts and all(first in text for text in bursts)
