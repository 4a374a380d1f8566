"""The alert runner: a subscriber whose handler evaluates the rules and posts transitions.

The rules' state lives in a state file beside the group's stored position, written (a temp
file renamed over the old one: whole or not at all, even under kill -9) each time the
subscriber is about to save positions (its ``before_save``; once per ``save_every`` events
and before each poll), so the state is never behind the stored position: after a crash the
subscriber may deliver again events the state already holds (their offsets are below the
state's own positions: skipped), never skip one the state lacks.

An event's transitions are saved with the state (in its outbox) before the first of them is
posted. So a crash repeats only the notifications of the event in hand, from the outbox, with
their keys, and never decides them again: with several partitions the restart may read them
in another interleaving, which moves the log's clock differently, and a decision taken afresh
could contradict one already posted (a stuck task noticed, then its finish read first: the
"fired" would never be resolved). Events handled after the last post are decided afresh: no
notification went out for them. A graceful stop (SIGTERM) is checked between events, never
interrupts a delivery that succeeds, and saves on the way out: nothing is posted twice.

A notification is never dropped: a failing webhook is retried with backoff (the shared retry
policy, longer delays), and the stream waits for it (the lag grows, ``ledger alerts status``
shows the attempts and the error); a stop meanwhile keeps the undelivered transitions in the
state (the outbox), delivered first on restart. Storing the state rather than rebuilding it
by replay: a stuck rule has no bounded window (a task may hang for days).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.consumers.subscriber import Delivery, Subscriber
from ledger.consumers.webhook import IDEMPOTENCY_HEADER, DeliveryFailed, Post, body, encode
from ledger.domain.alert_rules import AlertRule
from ledger.domain.alerts import Evaluator, Transition
from ledger.retry import Backoff, RetryPolicy

__all__ = ["DELIVERY", "AlertRunner", "AlertState", "RunStats"]

log = logging.getLogger(__name__)
DELIVERY = RetryPolicy(first_s=0.5, factor=2.0, cap_s=60.0)
"""Webhook retries: half a second first, then doubling up to a minute."""
RECENT = 50
"""Delivery outcomes kept in the state file for ``ledger alerts status``."""


class AlertState:
    """The state file: the evaluator's snapshot, the next offset it holds per partition, the
    transitions of those events not delivered yet (the outbox: a stop while a webhook is
    failing), and the delivery record (totals, the pending retry, the latest outcomes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError) as exc:
            raise ValueError(f"alert state file {path}: cannot be read ({exc})") from None
        self.positions: dict[int, int] = {int(p): o for p, o in data.get("positions", {}).items()}
        self.evaluator: dict[str, Any] = data.get("evaluator", {})
        self.outbox: list[dict[str, Any]] = data.get("outbox", [])
        self.deliveries: dict[str, Any] = data.get("deliveries", {"delivered": 0, "failed_attempts": 0,
                                                                  "pending": None, "recent": []})  # fmt: skip

    def save(self) -> None:
        """Write the whole file at once: a crash leaves the old one or the new one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"positions": self.positions, "evaluator": self.evaluator, "outbox": self.outbox,
                "deliveries": self.deliveries}  # fmt: skip
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(data))
        os.replace(temporary, self.path)

    def record(self, transition: Transition, url: str, attempts: int, error: str | None) -> None:
        entry = {"key": transition.key, "rule": transition.rule, "transition": transition.kind,
                 "subject": transition.subject, "url": url, "attempts": attempts, "error": error,
                 "at": datetime.now(UTC).isoformat()}  # fmt: skip
        if error is None:
            self.deliveries["delivered"] += 1
            self.deliveries["pending"] = None
            self.deliveries["recent"] = [*self.deliveries["recent"], entry][-RECENT:]
        else:
            self.deliveries["failed_attempts"] += 1
            self.deliveries["pending"] = entry


@dataclass
class RunStats:
    events: int = 0
    skipped: int = 0
    delivered: int = 0


class AlertRunner:
    """Evaluates ``rules`` over the events ``subscriber`` delivers and posts each transition."""

    def __init__(self, rules: tuple[AlertRule, ...], subscriber: Subscriber, state: AlertState, post: Post, *,
                 policy: RetryPolicy = DELIVERY) -> None:  # fmt: skip
        self.rules = {rule.name: rule for rule in rules}
        self.subscriber, self.state, self.post, self.policy = subscriber, state, post, policy
        self.evaluator = Evaluator(rules, state.evaluator)
        self.handled = dict(state.positions)  # the next offset per partition the evaluator holds
        self.outbox = [Transition.from_data(t) for t in state.outbox]  # its transitions not delivered yet
        self.stats = RunStats()
        subscriber.before_save = self.save
        self._checked: set[int] = set()  # partitions whose first delivery was compared with the state

    def run(self, stop: threading.Event) -> RunStats:
        """Until ``stop`` is set; the state and the subscriber's positions are saved on the way
        out (the state last: ahead of the position is the safe side)."""
        with self.subscriber:
            if self._flush_outbox(stop):
                for delivery in self.subscriber.deliveries(stop):
                    if stop.is_set() or not self._handle(delivery, stop):
                        break
        self.save()
        return self.stats

    def _flush_outbox(self, stop: threading.Event) -> bool:
        """Deliver the transitions in hand, oldest first; False if stopped while retrying."""
        while self.outbox:
            if not self._deliver(self.outbox[0], stop):
                return False
            self.outbox.pop(0)
        return True

    def _handle(self, delivery: Delivery, stop: threading.Event) -> bool:
        partition, offset = delivery.partition, delivery.offset
        if partition not in self._checked:
            self._checked.add(partition)
            held = self.state.positions.get(partition)
            if held is not None and offset > held:  # the state file was replaced or lost
                log.warning("alert state behind the group's position: events not evaluated",
                            extra={"partition": partition, "from": held, "to": offset})  # fmt: skip
        if offset < self.handled.get(partition, 0):
            self.stats.skipped += 1  # held by the state already (a crash before the position was saved)
            return True
        self.outbox = self.evaluator.feed(delivery.event, f"{partition}:{offset}")
        self.handled[partition] = offset + 1
        self.stats.events += 1
        if self.outbox:
            self.save()  # decided, then posted: a crash re-posts these (same keys), never decides again
        return self._flush_outbox(stop)  # False: stopped while retrying; the rest waits in the state

    def save(self) -> None:
        """The state of every event handled so far, before the subscriber saves their positions."""
        self.state.positions = dict(self.handled)
        self.state.evaluator = self.evaluator.snapshot()
        self.state.outbox = [t.as_data() for t in self.outbox]
        self.state.save()

    def _deliver(self, transition: Transition, stop: threading.Event) -> bool:
        """Post until the receiver takes it; False if ``stop`` was set while waiting to retry."""
        rule = self.rules.get(transition.rule)
        if rule is None:  # held in the outbox from a run with a rule since removed
            log.warning("alert of a removed rule not delivered", extra={"rule": transition.rule, "key": transition.key})
            return True
        payload = encode(body(rule, transition))
        backoff = Backoff("webhook delivery failed; will retry", log, self.policy)
        while True:
            try:
                self.post(rule.webhook, payload, {IDEMPOTENCY_HEADER: transition.key})
            except DeliveryFailed as exc:
                backoff.failed(exc)
                self.state.record(transition, rule.webhook, backoff.attempt, str(exc))
                self.state.save()  # positions, evaluator and outbox as last saved
                if not backoff.wait(stop):
                    return False
                continue
            self.state.record(transition, rule.webhook, backoff.attempt + 1, None)
            self.stats.delivered += 1
            log.info("alert delivered", extra={"rule": transition.rule, "transition": transition.kind,
                                               "subject": transition.subject, "key": transition.key})  # fmt: skip
            return True
