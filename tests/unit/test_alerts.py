"""Alert rules and their evaluation: one-line errors for bad rules files; each rule kind
fires and resolves by the log's own time; a replay (or a restore from a snapshot) gives the
same transitions with the same idempotency keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain.alert_rules import CountRule, FailureGroupRule, RulesError, StatusRule, StuckRule, parse_rules
from ledger.domain.alerts import Evaluator, Transition
from ledger.domain.events import (
    AnyEvent,
    Emitter,
    FailureGroupReopened,
    FailureGroupResolved,
    TaskFailed,
    TaskReceived,
    TaskStarted,
    TaskSucceeded,
)
from ledger.domain.failures import fingerprint

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
EMITTER = Emitter(host="h", pid=1)
HOOK = 'webhook = "http://127.0.0.1:9/hook"'
RULES = f"""
[[rule]]
name = "failed"
when = "status"
task = "billing.*"
status = "FAILURE"
{HOOK}

[[rule]]
name = "many"
when = "count"
status = "failure"
threshold = 3
window = "1m"
{HOOK}
format = "slack"

[[rule]]
name = "stuck"
when = "stuck"
after = "5m"
{HOOK}
"""


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def started(task: str, s: float, name: str = "billing.charge", attempt: int = 0) -> TaskStarted:
    return TaskStarted(task_id=task, task_name=name, occurred_at=at(s), attempt=attempt, emitter=EMITTER)


def failed(task: str, s: float, name: str = "billing.charge", attempt: int = 0, exc: str = "E",
           message: str | None = None) -> TaskFailed:  # fmt: skip
    return TaskFailed(task_id=task, task_name=name, occurred_at=at(s), attempt=attempt, exc_type=exc,
                      exc_message=message, emitter=EMITTER)  # fmt: skip


def resolved(fp: str, s: float, by: str | None = "ops") -> FailureGroupResolved:
    return FailureGroupResolved(fingerprint=fp, occurred_at=at(s), resolved_by=by, emitter=EMITTER)


def reopened(fp: str, s: float, by: str | None = "ops") -> FailureGroupReopened:
    return FailureGroupReopened(fingerprint=fp, occurred_at=at(s), reopened_by=by, emitter=EMITTER)


def done(task: str, s: float, name: str = "billing.charge", attempt: int = 0) -> TaskSucceeded:
    return TaskSucceeded(task_id=task, task_name=name, occurred_at=at(s), attempt=attempt, emitter=EMITTER)


GROUP_RULES = f"""
[[rule]]
name = "new-cause"
when = "failure-group"
task = "billing.*"
{HOOK}

[[rule]]
name = "group-burst"
when = "failure-group"
threshold = 3
window = "1m"
{HOOK}
"""


def run(events: list[AnyEvent], evaluator: Evaluator | None = None, first: int = 0) -> list[Transition]:
    evaluator = evaluator or Evaluator(parse_rules(RULES))
    out: list[Transition] = []
    for offset, event in enumerate(events, start=first):
        out += evaluator.feed(event, f"0:{offset}")
    return out


def kinds(transitions: list[Transition]) -> list[tuple[str, str, str]]:
    return [(t.rule, t.kind, t.subject) for t in transitions]


# -- the rules file -------------------------------------------------------------------------
def test_a_rules_file_gives_typed_rules() -> None:
    failed_rule, many, stuck = parse_rules(RULES)
    assert isinstance(failed_rule, StatusRule) and failed_rule.task == "billing.*"
    assert isinstance(many, CountRule) and many.window == timedelta(minutes=1) and many.format == "slack"
    assert isinstance(stuck, StuckRule) and stuck.after == timedelta(minutes=5) and stuck.task == "*"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rule = [", "not valid TOML"),
        ("", "rule: no [[rule]] table"),
        (f'[[rule]]\nname = "a"\nwhen = "often"\n{HOOK}',
         "rule[0] (a).when: must be one of status, count, stuck, failure-group"),
        (f'[[rule]]\nname = "a"\nwhen = "count"\nstatus = "FAILURE"\nwindow = "1m"\nthreshold = 0\n{HOOK}',
         "rule[0] (a).threshold: Input should be greater than or equal to 1"),
        (f'[[rule]]\nname = "a"\nwhen = "stuck"\nafter = "soon"\n{HOOK}',
         "rule[0] (a).after: 'soon' is not a duration like 90s, 15m, 1h or 2d"),
        (f'[[rule]]\nname = "a"\nwhen = "status"\nstatus = "LOST"\n{HOOK}', "rule[0] (a).status: 'LOST' is not one of"),
        ('[[rule]]\nname = "a"\nwhen = "stuck"\nafter = "1m"\nwebhook = "ftp://x"',
         "rule[0] (a).webhook: String should"),
        (f'[[rule]]\nname = "a"\nwhen = "stuck"\nafter = "1m"\ncolour = 1\n{HOOK}', "rule[0] (a).colour: Extra inputs"),
        (f'[[rule]]\nname = "a"\nwhen = "failure-group"\nfingerprint = "ABC"\n{HOOK}',
         "rule[0] (a).fingerprint: 'ABC' is not a fingerprint (16 lowercase hex digits"),
        (f'[[rule]]\nname = "a"\nwhen = "failure-group"\nwindow = "a while"\n{HOOK}',
         "rule[0] (a).window: 'a while' is not a duration"),
        (f'[[rule]]\nname = "a"\nwhen = "failure-group"\nthreshold = 0\n{HOOK}',
         "rule[0] (a).threshold: Input should be greater than or equal to 1"),
        (f'[[rule]]\nname = "a"\nwhen = "failure-group"\nstatus = "FAILURE"\n{HOOK}',
         "rule[0] (a).status: Extra inputs are not permitted"),
        (f'[[rule]]\nname = "a"\nwhen = "stuck"\nafter = "1m"\n{HOOK}\n' * 2, "rule[1] (a).name: used by an earlier"),
        (f'[alerts]\nx = 1\n[[rule]]\nname = "a"\nwhen = "stuck"\nafter = "1m"\n{HOOK}', "alerts: unknown table"),
    ],
)  # fmt: skip
def test_a_bad_rules_file_is_one_line_naming_the_rule_and_field(text: str, message: str) -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(text)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value).strip()


# -- each rule kind --------------------------------------------------------------------------
def test_a_status_rule_fires_per_task_and_resolves_when_the_task_moves_on() -> None:
    events: list[AnyEvent] = [
        failed("a", 1), failed("a", 2),  # the same failure twice: one firing
        failed("x", 3, name="mail.send"),  # another name: nothing
        TaskReceived(task_id="a", task_name="billing.charge", occurred_at=at(4), emitter=EMITTER),  # late
        started("a", 5, attempt=1), done("a", 6, attempt=1),
    ]  # fmt: skip
    got = [t for t in run(events) if t.rule == "failed"]
    assert kinds(got) == [("failed", "fired", "a"), ("failed", "resolved", "a")]
    assert got[0].cause == "0:0" and got[1].cause == "0:4" and got[0].detail["exc_type"] == "E"


def test_a_count_rule_fires_when_reached_and_resolves_when_the_window_moves_past() -> None:
    events: list[AnyEvent] = [failed(f"t{i}", s, name="n") for i, s in enumerate([0, 10, 20, 30])]
    events += [started("later", 75, name="n"), started("later2", 95, name="n")]
    got = [t for t in run(events) if t.rule == "many"]
    assert kinds(got) == [("many", "fired", "many"), ("many", "resolved", "many")]
    assert got[0].cause == "0:2" and got[0].detail["count"] == 3
    assert got[1].cause == "0:4" and got[1].at == at(75)  # window (15, 75]: only 20 and 30 left


def test_a_stuck_rule_fires_by_the_logs_clock_and_resolves_on_the_next_transition() -> None:
    events: list[AnyEvent] = [started("slow", 0, name="n"), started("quick", 1, name="n"), done("quick", 2, name="n"),
                              started("other", 299, name="n"), started("other", 300, name="n"),
                              done("slow", 400, name="n"), done("other", 401, name="n")]  # fmt: skip
    got = [t for t in run(events) if t.rule == "stuck"]
    assert kinds(got) == [("stuck", "fired", "slow"), ("stuck", "resolved", "slow")]
    assert got[0].cause == "0:4" and got[0].detail["since"] == at(0).isoformat()


def test_keys_are_deterministic_and_distinct() -> None:
    events: list[AnyEvent] = [failed(f"t{i}", i * 200) for i in range(6)]
    first, again = run(events), run(events)
    assert [t.key for t in first] == [t.key for t in again]
    assert len({t.key for t in first}) == len(first)


@st.composite
def histories(draw: st.DrawFn) -> list[AnyEvent]:
    out: list[AnyEvent] = []
    for i in range(draw(st.integers(1, 40))):
        task = draw(st.sampled_from(["a", "b", "c", "d"]))
        step = draw(st.sampled_from(["started", "failed", "done"]))
        name = draw(st.sampled_from(["billing.charge", "mail.send"]))
        seconds = draw(st.integers(0, 60)) + i * draw(st.integers(0, 90))
        event: AnyEvent = (started if step == "started" else failed if step == "failed" else done)(task, seconds, name)
        out.append(event)
    return out


@settings(max_examples=150, deadline=None)
@given(histories(), st.data())
def test_a_restore_from_a_snapshot_goes_on_exactly_as_without_a_restart(
    events: list[AnyEvent], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(events)))
    whole = run(events)
    before = Evaluator(parse_rules(RULES))
    head = run(events[:cut], before)
    restored = Evaluator(parse_rules(RULES), json.loads(json.dumps(before.snapshot())))
    tail = run(events[cut:], restored, first=cut)
    assert [t.key for t in head + tail] == [t.key for t in whole]
    assert all(t.kind in ("fired", "resolved") for t in whole)


@settings(max_examples=150, deadline=None)
@given(histories())
def test_fired_and_resolved_alternate_per_rule_and_subject(events: list[AnyEvent]) -> None:
    last: dict[tuple[str, str], Any] = {}
    for t in run(events):
        assert last.get((t.rule, t.subject), "resolved") != t.kind, t
        last[(t.rule, t.subject)] = t.kind


def test_a_rule_whose_definition_changed_starts_afresh_and_the_others_keep_their_state() -> None:
    before = Evaluator(parse_rules(RULES))
    run([failed("a", 0), failed("b", 1), failed("c", 2)], before)  # "failed" fires for a, b, c; "many" fires
    changed = parse_rules(RULES.replace("threshold = 3", "threshold = 4").replace("9/hook", "10/hook"))
    after = Evaluator(changed, json.loads(json.dumps(before.snapshot())))
    got = run([done("a", 3, attempt=1), failed("d", 4)], after, first=3)
    # "failed" kept its state (only the webhook changed): a resolves; "many" restarted: 1 < 4
    assert kinds(got) == [("failed", "resolved", "a"), ("failed", "fired", "d")]


# -- failure-group rules ---------------------------------------------------------------------
NOT_FOUND = fingerprint("billing.charge", "KeyError", "order 1 not found")
TIMEOUT = fingerprint("billing.charge", "TimeoutError", "gave up after 3 s")


def groups(events: list[AnyEvent], rules: str = GROUP_RULES, evaluator: Evaluator | None = None) -> list[Transition]:
    return run(events, evaluator or Evaluator(parse_rules(rules)))


def not_found(task: str, s: float, order: int, name: str = "billing.charge") -> TaskFailed:
    return failed(task, s, name=name, exc="KeyError", message=f"order {order} not found")


def test_a_failure_group_rule_parses_with_its_defaults() -> None:
    new, burst = parse_rules(GROUP_RULES)
    assert isinstance(new, FailureGroupRule) and (new.threshold, new.window, new.fingerprint) == (1, None, None)
    assert isinstance(burst, FailureGroupRule) and (burst.threshold, burst.window) == (3, timedelta(minutes=1))


def test_a_new_failure_group_fires_once_per_group_by_the_fingerprint_of_the_views() -> None:
    events: list[AnyEvent] = [
        not_found("a", 0, 17), not_found("b", 1, 4242),  # one cause, numbers varying: one group
        failed("c", 2, exc="TimeoutError", message="gave up after 30 s"),  # another cause
        not_found("d", 3, 5, name="mail.send"),  # not a billing task
    ]  # fmt: skip
    got = [t for t in groups(events) if t.rule == "new-cause"]
    assert kinds(got) == [("new-cause", "fired", NOT_FOUND), ("new-cause", "fired", TIMEOUT)]
    assert got[0].detail == {"fingerprint": NOT_FOUND, "task_name": "billing.charge", "exc_type": "KeyError",
                             "message": "order <n> not found", "task_id": "a", "count": 1, "threshold": 1,
                             "window_s": None, "reopened": False}  # fmt: skip


def test_a_resolved_group_resolves_the_alert_and_fires_again_when_it_reopens() -> None:
    events: list[AnyEvent] = [
        not_found("a", 0, 1), not_found("b", 10, 2),
        resolved(NOT_FOUND, 20),  # resolves the alert
        not_found("c", 15, 3),  # read after the resolution but occurred before it: resolved already
        resolved(NOT_FOUND, 18),  # an older resolution than the one in hand: nothing
        not_found("d", 30, 4),  # after it: the group reopened
    ]  # fmt: skip
    got = [t for t in groups(events) if t.rule == "new-cause"]
    assert kinds(got) == [("new-cause", "fired", NOT_FOUND), ("new-cause", "resolved", NOT_FOUND),
                          ("new-cause", "fired", NOT_FOUND)]  # fmt: skip
    assert [t.cause for t in got] == ["0:0", "0:2", "0:5"]
    assert got[1].detail["reason"] == "resolved" and got[1].detail["resolved_by"] == "ops"
    assert got[0].detail["reopened"] is False and got[2].detail["reopened"] is True


def test_a_reopen_fires_nothing_and_lets_every_later_failure_count() -> None:
    events: list[AnyEvent] = [
        not_found("a", 0, 1),
        resolved(NOT_FOUND, 20),  # resolves the alert
        reopened(NOT_FOUND, 30),  # the operator reopens it: no failure, so no alert yet
        not_found("b", 15, 2),  # occurred before the resolution, read after the reopen: it counts
        resolved(NOT_FOUND, 40),  # resolved again: the alert resolves
        reopened(NOT_FOUND, 35),  # an older reopen than that resolution: still resolved
        not_found("c", 38, 3),  # before the latest resolution: nothing
    ]  # fmt: skip
    got = [t for t in groups(events) if t.rule == "new-cause"]
    assert kinds(got) == [("new-cause", "fired", NOT_FOUND), ("new-cause", "resolved", NOT_FOUND)] * 2
    assert [t.cause for t in got] == ["0:0", "0:1", "0:3", "0:4"]
    assert got[2].detail["reopened"] is True and got[2].detail["task_id"] == "b"


def test_a_resolution_older_than_a_failure_already_read_leaves_the_group_firing() -> None:
    # the resolution's partition is read late: a failure after it is in hand, so the group is
    # open (as ``ledger failures`` says): no resolved transition, and nothing fires twice
    events: list[AnyEvent] = [not_found("a", 0, 1), not_found("b", 30, 2), resolved(NOT_FOUND, 20),
                              not_found("c", 40, 3)]  # fmt: skip
    assert kinds([t for t in groups(events) if t.rule == "new-cause"]) == [("new-cause", "fired", NOT_FOUND)]


def test_a_group_burst_fires_at_the_threshold_within_the_window_and_resolves_when_it_passes() -> None:
    events: list[AnyEvent] = [
        not_found("a", 0, 1), not_found("b", 20, 2, name="mail.send"),  # another name: another group
        not_found("c", 30, 3), not_found("d", 50, 4),  # the 3rd of billing's group within 1m: fires
        not_found("e", 70, 5),  # still 3 within (10, 70]: no change
        started("x", 95),  # the clock at 95: (35, 95] holds 50 and 70: resolves
        not_found("f", 200, 6), not_found("g", 201, 7), not_found("h", 202, 8),  # again
        resolved(NOT_FOUND, 203),  # the group resolved by an operator: the alert resolves
    ]  # fmt: skip
    got = [t for t in groups(events) if t.rule == "group-burst"]
    assert kinds(got) == [("group-burst", "fired", NOT_FOUND), ("group-burst", "resolved", NOT_FOUND)] * 2
    assert [t.cause for t in got] == ["0:3", "0:5", "0:8", "0:9"]
    assert got[0].detail["count"] == 3 and got[1].detail == {**got[1].detail, "reason": "window", "count": 2}
    assert got[3].detail["reason"] == "resolved"


def test_a_rule_on_one_fingerprint_watches_that_group_only() -> None:
    rules = f'[[rule]]\nname = "one"\nwhen = "failure-group"\nfingerprint = "{TIMEOUT}"\n{HOOK}'
    events: list[AnyEvent] = [not_found("a", 0, 1), failed("b", 1, exc="TimeoutError", message="gave up after 9 s"),
                              resolved(NOT_FOUND, 2), resolved(TIMEOUT, 3)]  # fmt: skip
    assert kinds(groups(events, rules)) == [("one", "fired", TIMEOUT), ("one", "resolved", TIMEOUT)]


@st.composite
def failure_histories(draw: st.DrawFn) -> list[AnyEvent]:
    """Failures of three causes with varying numbers, resolutions, reopens, other events; times jump
    about (as reads across partitions do)."""
    out: list[AnyEvent] = []
    for i in range(draw(st.integers(1, 50))):
        seconds = draw(st.integers(0, 60)) + i * draw(st.integers(0, 40))
        kind = draw(st.sampled_from(["not-found", "timeout", "mail", "resolve", "reopen", "started"]))
        if kind == "resolve":
            out.append(resolved(draw(st.sampled_from([NOT_FOUND, TIMEOUT])), seconds))
        elif kind == "reopen":
            out.append(reopened(draw(st.sampled_from([NOT_FOUND, TIMEOUT])), seconds))
        elif kind == "started":
            out.append(started(f"s{i}", seconds))
        elif kind == "timeout":
            out.append(failed(f"t{i}", seconds, exc="TimeoutError", message=f"gave up after {i} s"))
        else:
            out.append(not_found(f"t{i}", seconds, i, name="billing.charge" if kind == "not-found" else "mail.send"))
    return out


@settings(max_examples=200, deadline=None)
@given(failure_histories(), st.data())
def test_failure_group_rules_restore_from_a_snapshot_exactly_and_alternate(
    events: list[AnyEvent], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(events)))
    whole = groups(events)
    before = Evaluator(parse_rules(GROUP_RULES))
    head = run(events[:cut], before)
    restored = Evaluator(parse_rules(GROUP_RULES), json.loads(json.dumps(before.snapshot())))
    tail = run(events[cut:], restored, first=cut)
    assert [t.key for t in head + tail] == [t.key for t in whole]
    last: dict[tuple[str, str], str] = {}
    for t in whole:
        assert last.get((t.rule, t.subject), "resolved") != t.kind, t
        last[(t.rule, t.subject)] = t.kind
