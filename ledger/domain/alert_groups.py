"""The failure-group rule's state machine: failures grouped by the fingerprint the views use.

A failure (``task.failed``) belongs to the group ``domain.failures.fingerprint`` gives it, the
function the projector stores for ``ledger failures``: an alert's group is the group an
operator then looks at and resolves. A resolution (``failures.resolved``, keyed by the
fingerprint, so on another partition than the failures) is compared with the failures by
event time through ``domain.failures.is_open``, as the views do: a failure at or before the
group's latest resolution no longer counts, a later one counts afresh (the group reopened).
An operator's reopen (``failures.reopened``) fires nothing (it is not a failure); from then
on every failure counts, as if the group had not been resolved.

Per group only the latest ``threshold`` failure times are kept (enough to decide, and to
recount after a resolution). With a window, each group's next deadline (when its oldest
counted failure leaves the window if it is firing; when its newest does, to forget it)
waits in a heap; entries made stale by later failures are skipped, so the order of the
transitions one tick makes is the same after a restore from a snapshot.
"""

from __future__ import annotations

import heapq
from bisect import insort
from fnmatch import fnmatchcase
from typing import Any, Literal

from ledger.domain.alert_rules import FailureGroupRule
from ledger.domain.alert_transition import Detail, Transition, moment
from ledger.domain.events import FailureGroupEvent, FailureGroupResolved, TaskEvent, TaskFailed
from ledger.domain.failures import fingerprint, is_open, mask_message

__all__ = ["FailureGroupMachine"]


class FailureGroupMachine:
    """Fires per group once it has ``threshold`` failures after its latest resolution (within
    the window, if the rule has one); resolves when the group is resolved, or when the window
    holds fewer than ``threshold`` of them."""

    def __init__(self, rule: FailureGroupRule, state: dict[str, Any]) -> None:
        self.rule = rule
        self.window = rule.window.total_seconds() if rule.window is not None else None
        # fingerprint -> {"times": [latest failure times], "firing": bool, and the newest failure's
        # task_name, exc_type, message (masked), task_id}
        self.groups: dict[str, dict[str, Any]] = {fp: dict(g) for fp, g in state.get("groups", {}).items()}
        self.resolved: dict[str, float] = dict(state.get("resolved", {}))  # fingerprint -> latest resolution
        self.reopened: dict[str, float] = dict(state.get("reopened", {}))  # fingerprint -> latest reopen
        self.deadlines = [(self._deadline(g), fp) for fp, g in self.groups.items() if self.window is not None]
        heapq.heapify(self.deadlines)

    def event(self, event: TaskEvent, clock: float, cause: str) -> list[Transition]:
        if not isinstance(event, TaskFailed) or not fnmatchcase(event.task_name or "", self.rule.task):
            return []
        fp = fingerprint(event.task_name, event.exc_type, event.exc_message)
        at = event.occurred_at.timestamp()
        if self.rule.fingerprint not in (None, fp) or not self._counts(fp, at) or self._expired(at, clock):
            return []
        group = self.groups.setdefault(fp, {"times": [], "firing": False})
        insort(group["times"], at)
        del group["times"][: -self.rule.threshold]
        group.update(task_name=event.task_name, exc_type=event.exc_type, message=mask_message(event.exc_message),
                     task_id=event.task_id)  # fmt: skip
        out = []
        if not group["firing"] and self._reached(group, clock):
            group["firing"] = True
            reopened = fp in self.resolved
            out.append(self._transition("fired", fp, group, clock, cause, reopened=reopened))
        self._schedule(fp, group)
        return out

    def decision(self, event: FailureGroupEvent, clock: float, cause: str) -> list[Transition]:
        fp, at = event.fingerprint, event.occurred_at.timestamp()
        if self.rule.fingerprint not in (None, fp):
            return []
        if not isinstance(event, FailureGroupResolved):  # a reopen: not a failure, so it fires nothing
            self.reopened[fp] = max(at, self.reopened.get(fp, at))
            return []
        if at <= self.resolved.get(fp, float("-inf")):
            return []  # an older resolution than the one in hand: the latest counts
        self.resolved[fp] = at
        group = self.groups.get(fp)
        if group is None:
            return []
        group["times"] = [t for t in group["times"] if self._counts(fp, t)]
        out = []
        if group["firing"] and not self._reached(group, clock):
            group["firing"] = False
            out.append(self._transition("resolved", fp, group, clock, cause, reason="resolved",
                                        resolved_by=event.resolved_by))  # fmt: skip
        self._schedule(fp, group)
        return out

    def tick(self, clock: float, cause: str) -> list[Transition]:
        out = []
        while self.deadlines and self.deadlines[0][0] <= clock:
            deadline, fp = heapq.heappop(self.deadlines)
            group = self.groups.get(fp)
            if group is None or self._deadline(group) != deadline:
                continue  # a later failure moved it, or the group is gone
            group["times"] = [t for t in group["times"] if not self._expired(t, clock)]
            if group["firing"]:
                group["firing"] = False
                out.append(self._transition("resolved", fp, group, clock, cause, reason="window"))
            self._schedule(fp, group)
        return out

    def snapshot(self) -> dict[str, Any]:
        return {"groups": {fp: dict(g, times=list(g["times"])) for fp, g in self.groups.items()},
                "resolved": dict(self.resolved), "reopened": dict(self.reopened)}  # fmt: skip

    # -- the rules of one group ---------------------------------------------------------------
    def _counts(self, fp: str, at: float) -> bool:
        """A failure counts unless the group was resolved at or after it and not reopened
        since (``is_open``)."""
        resolved, reopened = self.resolved.get(fp), self.reopened.get(fp)
        return is_open(moment(at), None if resolved is None else moment(resolved),
                       None if reopened is None else moment(reopened))  # fmt: skip

    def _expired(self, at: float, clock: float) -> bool:
        return self.window is not None and at <= clock - self.window

    def _reached(self, group: dict[str, Any], clock: float) -> bool:
        times = group["times"]
        return len(times) >= self.rule.threshold and not self._expired(times[0], clock)

    def _deadline(self, group: dict[str, Any]) -> float:
        """When the group next needs a look: its oldest counted failure leaves the window (it
        stops firing), or, not firing, its newest does (it is forgotten)."""
        assert self.window is not None
        return float(group["times"][0] if group["firing"] else group["times"][-1]) + self.window

    def _schedule(self, fp: str, group: dict[str, Any]) -> None:
        if not group["times"]:
            del self.groups[fp]  # nothing left to count: only its resolution is remembered
        elif self.window is not None:
            heapq.heappush(self.deadlines, (self._deadline(group), fp))

    def _transition(self, kind: Literal["fired", "resolved"], fp: str, group: dict[str, Any], clock: float,
                    cause: str, **extra: str | bool | None) -> Transition:  # fmt: skip
        detail: Detail = {"fingerprint": fp, "task_name": group["task_name"], "exc_type": group["exc_type"],
                          "message": group["message"], "task_id": group["task_id"],
                          "count": sum(1 for t in group["times"] if not self._expired(t, clock)),
                          "threshold": self.rule.threshold, "window_s": self.window, **extra}  # fmt: skip
        return Transition(self.rule.name, kind, fp, moment(clock), cause, detail)
