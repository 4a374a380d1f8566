"""For the alert tests: a local webhook receiver (a real HTTP server on 127.0.0.1 that keeps
every POST, its Idempotency-Key and JSON body, and can refuse the first few with a 503), a
history that fires and resolves every kind of rule, and one of failure groups."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ledger.codec import Codec
from ledger.domain.alert_rules import parse_rules
from ledger.domain.alerts import Evaluator
from ledger.domain.events import AnyEvent, Emitter, FailureGroupResolved, TaskFailed, TaskStarted, TaskSucceeded
from ledger.domain.failures import fingerprint
from ledger.eventlog.base import EventLog
from ledger.wire import decode


@dataclass
class Received:
    key: str
    body: dict[str, Any]


@dataclass
class Receiver:
    url: str
    refuse: int = 0
    posts: list[Received] = field(default_factory=list)
    refused: int = 0
    refusing: bool = False  # refuse every post while set
    arrived: int = 0  # posts that reached the handler, held ones included
    lock: threading.Lock = field(default_factory=threading.Lock)
    hold_at: int | None = None  # with this many posts kept, the next one waits for `release`
    release: threading.Event = field(default_factory=threading.Event)

    def hold(self, at: int) -> None:
        self.hold_at = at
        self.release.clear()

    def wait_for(self, count: int, timeout_s: float = 120) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(self.posts) < count:
            assert time.monotonic() < deadline, f"{len(self.posts)} of {count} posts: {self.posts}"
            time.sleep(0.05)
        return list(self.posts)

    def wait_for_keys(self, count: int, timeout_s: float = 120) -> list[Received]:
        """All posts once ``count`` distinct idempotency keys arrived (repeats come on top)."""
        deadline = time.monotonic() + timeout_s
        while len({p.key for p in self.posts}) < count:
            assert time.monotonic() < deadline, f"{len({p.key for p in self.posts})} of {count} keys"
            time.sleep(0.05)
        return list(self.posts)


@contextmanager
def webhook_receiver(refuse: int = 0) -> Iterator[Receiver]:
    receiver = Receiver("", refuse=refuse)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            payload = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.arrived += 1
            if receiver.hold_at is not None and len(receiver.posts) >= receiver.hold_at:
                receiver.release.wait(120)
            with receiver.lock:
                if receiver.refusing or receiver.refused < receiver.refuse:
                    receiver.refused += 1
                    self.send_response(503)
                else:
                    receiver.posts.append(Received(self.headers["Idempotency-Key"], json.loads(payload)))
                    self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


# -- a history that fires and resolves every kind of rule ------------------------------------
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
EMITTER = Emitter(host="test", pid=1)


def rules_toml(url: str) -> str:
    return f"""
[[rule]]
name = "billing-failed"
when = "status"
task = "billing.*"
status = "FAILURE"
webhook = "{url}"

[[rule]]
name = "failure-burst"
when = "count"
status = "FAILURE"
threshold = 3
window = "30s"
webhook = "{url}"
format = "slack"

[[rule]]
name = "stuck"
when = "stuck"
after = "40s"
webhook = "{url}"
"""


def alert_history(tasks: int) -> list[AnyEvent]:
    """Tasks 7 s apart: failing ones (some retried to success), bursts of failures, quick
    ones, slow ones that get stuck and finish later; in time order."""
    timed: list[tuple[float, AnyEvent]] = []

    def add(seconds: float, kind: type[TaskStarted | TaskFailed | TaskSucceeded], task: str, name: str,
            attempt: int = 0, **extra: Any) -> None:  # fmt: skip
        event = kind(task_id=task, task_name=name, attempt=attempt, occurred_at=T0 + timedelta(seconds=seconds),
                     emitter=EMITTER, **extra)  # fmt: skip
        timed.append((seconds, event))

    for i in range(tasks):
        t, task = i * 7.0, f"task-{i}"
        name = "billing.charge" if i % 2 else "mail.send"
        add(t, TaskStarted, task, name)
        match i % 5:
            case 0 | 3:
                add(t + 1, TaskFailed, task, name, exc_type="IOError")
                if i % 5 == 3:
                    add(t + 20, TaskStarted, task, name, attempt=1)
                    add(t + 21, TaskSucceeded, task, name, attempt=1)
            case 1:
                add(t + 2, TaskSucceeded, task, name)
            case _:
                add(t + 60 + i % 3 * 10, TaskSucceeded, task, name)
        if i % 10 == 0:  # a burst of failures: the count rule fires, and resolves once it passed
            for k in (2, 3):
                add(t + k, TaskFailed, f"burst-{i}-{k}", "mail.send", exc_type="IOError")
    return [event for _, event in sorted(timed, key=lambda pair: pair[0])]


def group_rules_toml(url: str) -> str:
    return f"""
[[rule]]
name = "new-cause"
when = "failure-group"
task = "billing.*"
webhook = "{url}"

[[rule]]
name = "cause-burst"
when = "failure-group"
threshold = 5
window = "1m"
webhook = "{url}"
format = "slack"
"""


CAUSES = (("KeyError", "order {i} not found"), ("TimeoutError", "gateway 10.0.0.{i} timed out after {i}s"),
          ("ValueError", "card '{i:04d}' declined"))  # fmt: skip


def cause_fingerprint(cause: int, name: str = "billing.charge") -> str:
    exc_type, message = CAUSES[cause]
    return fingerprint(name, exc_type, message.format(i=1))


def failure_group_history(rounds: int) -> list[AnyEvent]:
    """Each round (a minute): failures of three causes (numbers and quoted values varying
    per failure) in billing and mail tasks, a burst of the first cause every third round;
    the first cause resolved in round 2 and recurring from round 3 on; in time order."""
    timed: list[tuple[float, AnyEvent]] = []
    for r in range(rounds):
        for k in range(9 if r % 3 == 0 else 3):
            cause = 0 if k >= 3 else k
            if r == 2 and cause == 0:
                continue  # the first cause fixed for a while
            i, seconds = r * 100 + k, r * 60.0 + k * 2
            name = "mail.send" if k == 2 and r % 2 else "billing.charge"
            exc_type, message = CAUSES[cause]
            timed.append((seconds, TaskFailed(task_id=f"fail-{i}", task_name=name, exc_type=exc_type,
                                              exc_message=message.format(i=i), emitter=EMITTER,
                                              occurred_at=T0 + timedelta(seconds=seconds))))  # fmt: skip
        if r == 2:
            resolution = FailureGroupResolved(fingerprint=cause_fingerprint(0), resolved_by="ops", emitter=EMITTER,
                                              occurred_at=T0 + timedelta(seconds=r * 60.0 + 30))  # fmt: skip
            timed.append((r * 60.0 + 30, resolution))
    return [event for _, event in sorted(timed, key=lambda pair: pair[0])]


def expected_keys(log: EventLog, codec: Codec, rules: str) -> list[str]:
    """The keys of every transition the rules give over the log, read in log order."""
    evaluator = Evaluator(parse_rules(rules))
    keys = []
    for record in log.read("beginning"):
        keys += [t.key for t in evaluator.feed(decode(record, codec), f"{record.partition}:{record.offset}")]
    return keys
