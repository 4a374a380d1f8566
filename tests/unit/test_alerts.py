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

from ledger.domain.alert_rules import CountRule, RulesError, StatusRule, StuckRule, parse_rules
from ledger.domain.alerts import Evaluator, Transition
from ledger.domain.events import (
    AnyEvent,
    Emitter,
    TaskFailed,
    TaskReceived,
    TaskStarted,
    TaskSucceeded,
)

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


def failed(task: str, s: float, name: str = "billing.charge", attempt: int = 0) -> TaskFailed:
    return TaskFailed(task_id=task, task_name=name, occurred_at=at(s), attempt=attempt, exc_type="E",
                      emitter=EMITTER)  # fmt: skip


def done(task: str, s: float, name: str = "billing.charge", attempt: int = 0) -> TaskSucceeded:
    return TaskSucceeded(task_id=task, task_name=name, occurred_at=at(s), attempt=attempt, emitter=EMITTER)


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
        (f'[[rule]]\nname = "a"\nwhen = "often"\n{HOOK}', "rule[0] (a).when: must be one of status, count, stuck"),
        (f'[[rule]]\nname = "a"\nwhen = "count"\nstatus = "FAILURE"\nwindow = "1m"\nthreshold = 0\n{HOOK}',
         "rule[0] (a).threshold: Input should be greater than or equal to 1"),
        (f'[[rule]]\nname = "a"\nwhen = "stuck"\nafter = "soon"\n{HOOK}',
         "rule[0] (a).after: 'soon' is not a duration like 90s, 15m, 1h or 2d"),
        (f'[[rule]]\nname = "a"\nwhen = "status"\nstatus = "LOST"\n{HOOK}', "rule[0] (a).status: 'LOST' is not one of"),
        ('[[rule]]\nname = "a"\nwhen = "stuck"\nafter = "1m"\nwebhook = "ftp://x"',
         "rule[0] (a).webhook: String should"),
        (f'[[rule]]\nname = "a"\nwhen = "stuck"\nafter = "1m"\ncolour = 1\n{HOOK}', "rule[0] (a).colour: Extra inputs"),
        (f'[[rule]]\nname = "a"\nwhen = "failure-group"\n{HOOK}', "rule[0] (a).when: 'failure-group' rules are not"),
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
