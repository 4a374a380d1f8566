"""Alert evaluation: a state machine per rule, fed the log's events, emitting transitions.

No I/O and no wall clock: time is the log's own, the latest ``occurred_at`` read so far
(every event moves it, a worker's or a periodic task's too). So the time-based rules
(a count over a sliding window, a task stuck longer than N, a failure group's failures over
a window) are decided by what the log
says, and a replay of the same events in the same order gives the same transitions with
the same idempotency keys; the price is that a silent log stops the clock (a stuck task is
noticed at the next event of any kind).

Each transition's key derives from (rule, fired/resolved, subject, the position of the event
that caused it): the repeat that a crash between posting and saving causes has the key of
the first post, and a receiver can drop it.
"""

from __future__ import annotations

import hashlib
import heapq
from bisect import insort
from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any, Literal

from ledger.domain.alert_groups import FailureGroupMachine
from ledger.domain.alert_rules import AlertRule, CountRule, FailureGroupRule, StatusRule, StuckRule
from ledger.domain.alert_transition import Detail, Transition, moment
from ledger.domain.events import AnyEvent, FailureGroupEvent, TaskEvent
from ledger.domain.statuses import PRECEDENCE, TaskStatus

__all__ = ["FINISHED", "Evaluator", "Transition"]

FINISHED = frozenset({TaskStatus.DONE, TaskStatus.FAILURE, TaskStatus.REVOKED})
"""A task in one of these is not running any more: it cannot be stuck."""
RECENTLY_FINISHED = 10_000
"""Finished tasks remembered by a stuck rule, so a late event of theirs does not reopen them."""


class _OnTasks:
    """A machine that reads only task events (a failure group's decisions are not theirs)."""

    def decision(self, event: FailureGroupEvent, clock: float, cause: str) -> list[Transition]:
        return []


def _matches(rule: AlertRule, event: TaskEvent) -> bool:
    return fnmatchcase(event.task_name or "", rule.task)


class _StatusMachine(_OnTasks):
    """Fires when a matching task reaches the status; resolves when it moves on (a later
    attempt, or a status at least as far along: a late RECEIVED resolves nothing)."""

    def __init__(self, rule: StatusRule, state: dict[str, Any]) -> None:
        self.rule = rule
        self.firing: dict[str, int] = dict(state.get("firing", {}))

    def event(self, event: TaskEvent, clock: float, cause: str) -> list[Transition]:
        status, task = event.status, event.task_id
        if status is None or not _matches(self.rule, event):
            return []
        detail: Detail = {"task_id": task, "task_name": event.task_name, "status": status.value,
                          "attempt": event.attempt, "exc_type": getattr(event, "exc_type", None)}  # fmt: skip
        if status is self.rule.status:
            fired = task not in self.firing
            self.firing[task] = max(event.attempt, self.firing.get(task, 0))
            return [Transition(self.rule.name, "fired", task, moment(clock), cause, detail)] if fired else []
        attempt = self.firing.get(task)
        if attempt is None:
            return []
        if event.attempt > attempt or (event.attempt == attempt and PRECEDENCE[status] >= PRECEDENCE[self.rule.status]):
            del self.firing[task]
            return [Transition(self.rule.name, "resolved", task, moment(clock), cause, detail)]
        return []

    def tick(self, clock: float, cause: str) -> list[Transition]:
        return []

    def snapshot(self) -> dict[str, Any]:
        return {"firing": dict(self.firing)}


class _CountMachine(_OnTasks):
    """At least ``threshold`` matching events with times in ``(clock - window, clock]``:
    only the latest ``threshold`` times matter, so that is all it keeps."""

    def __init__(self, rule: CountRule, state: dict[str, Any]) -> None:
        self.rule = rule
        self.times: list[float] = list(state.get("times", []))
        self.firing: bool = bool(state.get("firing", False))

    def event(self, event: TaskEvent, clock: float, cause: str) -> list[Transition]:
        if event.status is self.rule.status and _matches(self.rule, event):
            insort(self.times, event.occurred_at.timestamp())
            del self.times[: -self.rule.threshold]
        return []

    def tick(self, clock: float, cause: str) -> list[Transition]:
        start = clock - self.rule.window.total_seconds()
        count = sum(1 for t in self.times if t > start)
        reached = count >= self.rule.threshold
        if reached == self.firing:
            return []
        self.firing = reached
        detail: Detail = {"count": count, "threshold": self.rule.threshold,
                          "window_s": self.rule.window.total_seconds()}  # fmt: skip
        kind: Literal["fired", "resolved"] = "fired" if reached else "resolved"
        return [Transition(self.rule.name, kind, self.rule.name, moment(clock), cause, detail)]

    def snapshot(self) -> dict[str, Any]:
        return {"times": list(self.times), "firing": self.firing}


class _StuckMachine(_OnTasks):
    """A matching task not finished ``after`` its last transition fires; its next
    transition resolves it. Deadlines wait in a heap; stale entries are skipped."""

    def __init__(self, rule: StuckRule, state: dict[str, Any]) -> None:
        self.rule, self.after = rule, rule.after.total_seconds()
        # task id -> [last transition time, attempt, precedence, status]
        self.open: dict[str, list[Any]] = {k: list(v) for k, v in state.get("open", {}).items()}
        self.firing: set[str] = set(state.get("firing", []))
        self.finished: dict[str, None] = dict.fromkeys(state.get("finished", []))
        self.deadlines = [(v[0] + self.after, k) for k, v in self.open.items()]
        heapq.heapify(self.deadlines)

    def event(self, event: TaskEvent, clock: float, cause: str) -> list[Transition]:
        status, task = event.status, event.task_id
        if status is None or not _matches(self.rule, event) or task in self.finished:
            return []
        known = self.open.get(task)
        if known is not None and (event.attempt, PRECEDENCE[status]) < (known[1], known[2]):
            return []  # a late event: the task is further along already
        out = []
        if task in self.firing:
            self.firing.discard(task)
            detail: Detail = {"task_id": task, "task_name": event.task_name, "status": status.value}
            out.append(Transition(self.rule.name, "resolved", task, moment(clock), cause, detail))
        if status in FINISHED:
            self.open.pop(task, None)
            self.finished[task] = None
            if len(self.finished) > RECENTLY_FINISHED:
                del self.finished[next(iter(self.finished))]
        else:
            last = event.occurred_at.timestamp()
            self.open[task] = [last, event.attempt, PRECEDENCE[status], status.value, event.task_name]
            heapq.heappush(self.deadlines, (last + self.after, task))
        return out

    def tick(self, clock: float, cause: str) -> list[Transition]:
        out = []
        while self.deadlines and self.deadlines[0][0] <= clock:
            deadline, task = heapq.heappop(self.deadlines)
            known = self.open.get(task)
            if known is None or known[0] + self.after != deadline or task in self.firing:
                continue  # finished, moved on since, or already firing
            self.firing.add(task)
            detail: Detail = {"task_id": task, "task_name": known[4], "status": known[3],
                              "since": moment(known[0]).isoformat()}  # fmt: skip
            out.append(Transition(self.rule.name, "fired", task, moment(clock), cause, detail))
        return out

    def snapshot(self) -> dict[str, Any]:
        return {"open": {k: list(v) for k, v in self.open.items()}, "firing": sorted(self.firing),
                "finished": list(self.finished)}  # fmt: skip


_Machine = _StatusMachine | _CountMachine | _StuckMachine | FailureGroupMachine


def _machine(rule: AlertRule, state: dict[str, Any]) -> _Machine:
    if isinstance(rule, StatusRule):
        return _StatusMachine(rule, state)
    if isinstance(rule, CountRule):
        return _CountMachine(rule, state)
    if isinstance(rule, FailureGroupRule):
        return FailureGroupMachine(rule, state)
    return _StuckMachine(rule, state)


def _definition(rule: AlertRule) -> str:
    """What a rule's state depends on (not where it posts, nor in which format)."""
    return hashlib.sha256(rule.model_dump_json(exclude={"webhook", "format"}).encode()).hexdigest()[:16]


class Evaluator:
    """Every rule's state machine and the log's clock. ``snapshot()`` is plain JSON data:
    an evaluator built from it goes on exactly as this one would. A rule whose definition
    changed since the snapshot (another threshold, pattern, kind) starts afresh."""

    def __init__(self, rules: Iterable[AlertRule], state: dict[str, Any] | None = None) -> None:
        state = state or {}
        self.clock: float = float(state.get("clock", 0.0))
        saved = state.get("rules", {})
        self.machines = {}
        for rule in rules:
            kept = saved.get(rule.name, {})
            fresh = kept.get("definition") != _definition(rule)
            self.machines[rule.name] = _machine(rule, {} if fresh else kept.get("state", {}))

    def feed(self, event: AnyEvent, cause: str) -> list[Transition]:
        """The transitions this event causes: its own, then those of the time it moved."""
        self.clock = max(self.clock, event.occurred_at.timestamp())
        out: list[Transition] = []
        for machine in self.machines.values():
            if isinstance(event, TaskEvent):
                out += machine.event(event, self.clock, cause)
            elif isinstance(event, FailureGroupEvent):
                out += machine.decision(event, self.clock, cause)
            out += machine.tick(self.clock, cause)
        return out

    def snapshot(self) -> dict[str, Any]:
        rules = {name: {"definition": _definition(m.rule), "state": m.snapshot()} for name, m in self.machines.items()}
        return {"clock": self.clock, "rules": rules}
