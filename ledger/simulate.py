"""A simulated fleet of workers: realistic task histories for the demo, the benchmark and
the tests — retries, failures, revokes, periodic runs, plus the duplicate appends and late
events a real fleet produces. Deterministic for a seed.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.domain.events import (
    AnyEvent,
    Emitter,
    PeriodicTaskRegistered,
    PeriodicTaskTriggered,
    TaskEvent,
    TaskFailed,
    TaskPending,
    TaskReceived,
    TaskRetried,
    TaskRevoked,
    TaskStarted,
    TaskSucceeded,
)

TASK_NAMES = ("billing.charge", "email.send", "reports.build", "images.resize", "search.reindex")
QUEUES = {"billing.charge": "billing", "email.send": "emails", "reports.build": "reports",
          "images.resize": "media", "search.reindex": "celery"}  # fmt: skip
"""Each name routed to its own queue, as a fleet's ``task_routes`` would."""
EXCEPTIONS = (
    ("ValueError", "invalid card number for customer {n}"),
    ("ConnectionError", "smtp server mx{m}.example refused: 421 too many connections ({n} queued)"),
    ("KeyError", "'customer_id'"),
)
"""Three root causes; the numbers in a message vary per task (from its argument), as real
messages do, so only masking them groups the failures (``ledger failures``)."""


@dataclass(frozen=True, slots=True)
class Fleet:
    """``workers`` hosts running ``tasks`` tasks from ``start``; odds are per task."""

    seed: int = 0
    workers: int = 4
    retry_odds: float = 0.12
    failure_odds: float = 0.08
    revoke_odds: float = 0.02
    running_odds: float = 0.02
    """Tasks still running when the simulation ends (started, no outcome yet)."""

    def workers_list(self) -> list[Emitter]:
        return [
            Emitter(host=f"worker-{i}.example", pid=1000 + i, worker=f"celery@worker-{i}") for i in range(self.workers)
        ]


def task_events(fleet: Fleet, rng: random.Random, task_id: str, at: datetime) -> list[TaskEvent]:
    """pending → (received → started → retried)* → received → started → outcome."""
    name = rng.choice(TASK_NAMES)
    workers = fleet.workers_list()
    args = [rng.randint(1, 10_000)]
    queue = QUEUES[name]
    kwargs = {"priority": rng.choice(("low", "normal", "high"))}
    events: list[TaskEvent] = [
        TaskPending(
            task_id=task_id,
            task_name=name,
            args=args,
            kwargs=kwargs,
            queue=queue,
            occurred_at=at,
            emitter=Emitter(host="api.example", pid=7),
        )
    ]
    retries = 0
    while rng.random() < fleet.retry_odds and retries < 3:
        retries += 1
    tick = at
    for attempt in range(retries + 1):
        worker = rng.choice(workers)
        common = {"task_id": task_id, "task_name": name, "attempt": attempt, "emitter": worker}
        tick += timedelta(milliseconds=rng.randint(5, 400))
        events.append(TaskReceived(**common, args=args, kwargs=kwargs, queue=queue, occurred_at=tick))
        tick += timedelta(milliseconds=rng.randint(1, 100))
        events.append(TaskStarted(**common, occurred_at=tick))
        runtime = rng.lognormvariate(-1.0, 1.0)
        tick += timedelta(seconds=runtime)
        if attempt < retries:
            exc_type, message = _exception(rng, args[0])
            events.append(
                TaskRetried(**common, exc_type=exc_type, exc_message=message, countdown=2.0**attempt, occurred_at=tick)
            )
            tick += timedelta(seconds=2.0**attempt)
            continue
        outcome = _outcome(fleet, rng, common, args, runtime, tick)
        if outcome is not None:
            events.append(outcome)
    return events


def _exception(rng: random.Random, argument: int) -> tuple[str, str]:
    exc_type, template = rng.choice(EXCEPTIONS)
    return exc_type, template.format(n=argument, m=argument % 7)


def _outcome(fleet: Fleet, rng: random.Random, common: dict[str, Any], args: list[int], runtime: float,
             tick: datetime) -> TaskEvent | None:  # fmt: skip
    """How the last attempt ended: failed, revoked, succeeded, or None (still running)."""
    roll = rng.random()
    if roll < fleet.failure_odds:
        exc_type, message = _exception(rng, args[0])
        short_name = common["task_name"].split(".")[-1]
        where = f'  File "tasks.py", line 42, in {short_name}'
        traceback = f"Traceback (most recent call last):\n{where}\n{exc_type}: {message}"
        return TaskFailed(**common, exc_type=exc_type, exc_message=message, runtime=runtime, traceback=traceback,
                          occurred_at=tick)  # fmt: skip
    if roll < fleet.failure_odds + fleet.revoke_odds:
        return TaskRevoked(**common, reason="revoked by operator", terminated=True, occurred_at=tick)
    if roll < fleet.failure_odds + fleet.revoke_odds + fleet.running_odds:
        return None
    return TaskSucceeded(**common, result={"ok": True, "items": args[0] % 97}, runtime=runtime, occurred_at=tick)


def periodic_events(
    name: str, task: str, interval: float, runs: int, at: datetime, rng: random.Random, worker: Emitter
) -> list[AnyEvent]:
    """A registration, then ``runs`` triggers each followed by its run's lifecycle."""
    beat = Emitter(host="beat.example", pid=9, worker="celery-beat")
    events: list[AnyEvent] = [
        PeriodicTaskRegistered(name=name, task=task, interval_seconds=interval, occurred_at=at, emitter=beat)
    ]
    for run in range(runs):
        when = at + timedelta(seconds=interval * (run + 1))
        run_id = str(uuid.UUID(int=rng.getrandbits(128)))
        events.append(PeriodicTaskTriggered(name=name, task=task, task_id=run_id, occurred_at=when, emitter=beat))
        common = {"task_id": run_id, "task_name": task, "emitter": worker}
        events.append(TaskStarted(**common, occurred_at=when + timedelta(milliseconds=20)))
        runtime = rng.uniform(0.1, 2.0)
        done = when + timedelta(seconds=runtime)
        if rng.random() < 0.1:
            events.append(
                TaskFailed(
                    **common, exc_type="TimeoutError", exc_message="report timed out", runtime=runtime, occurred_at=done
                )
            )
        else:
            events.append(
                TaskSucceeded(**common, result={"rows": rng.randint(1, 999)}, runtime=runtime, occurred_at=done)
            )
    return events


def simulate(
    tasks: int,
    *,
    seed: int = 0,
    start: datetime | None = None,
    periodic: int = 3,
    periodic_runs: int = 12,
    duplicates: int = 0,
    late: int = 0,
    fleet: Fleet | None = None,
) -> list[AnyEvent]:
    """Events of ``tasks`` tasks and ``periodic`` periodic tasks, in emission order (by
    time), plus ``duplicates`` re-appended events and ``late`` RECEIVED events that arrive
    after their task finished. Without ``start`` the history begins at least an hour ago and
    ends before now, however long it is: no event is dated in the future."""
    if start is not None:
        return _simulate(tasks, seed, start, periodic, periodic_runs, duplicates, late, fleet)
    now = datetime.now(UTC)
    span = max(timedelta(hours=1), timedelta(seconds=tasks / 10 + 60.0 * periodic * periodic_runs + 60))
    events = _simulate(tasks, seed, now - span, periodic, periodic_runs, duplicates, late, fleet)
    overrun = max((event.occurred_at for event in events), default=now) - now
    if overrun > timedelta(0):  # a rare lifecycle longer than the margin: the same history, earlier
        events = _simulate(tasks, seed, now - span - overrun, periodic, periodic_runs, duplicates, late, fleet)
    return events


def _simulate(tasks: int, seed: int, start: datetime, periodic: int, periodic_runs: int, duplicates: int,
              late: int, fleet: Fleet | None) -> list[AnyEvent]:  # fmt: skip
    fleet = fleet or Fleet(seed=seed)
    rng = random.Random(seed)
    span = max(1.0, tasks / 10)  # ten new tasks a second
    per_task = [
        task_events(
            fleet, rng, str(uuid.UUID(int=rng.getrandbits(128))), start + timedelta(seconds=rng.uniform(0, span))
        )
        for _ in range(tasks)
    ]
    events: list[AnyEvent] = [e for lifecycle in per_task for e in lifecycle]  # type: ignore[misc]
    names = ("reports.nightly", "cache.warm", "billing.reconcile", "search.compact")
    for i in range(periodic):
        interval = 60.0 * (i + 1)
        events += periodic_events(
            names[i % len(names)] + ("" if i < len(names) else f".{i}"),
            "reports.build",
            interval,
            periodic_runs,
            start,
            rng,
            rng.choice(fleet.workers_list()),
        )
    events.sort(key=lambda e: e.occurred_at)
    for _ in range(duplicates):
        events.append(rng.choice(events))
    for _ in range(late):
        lifecycle = rng.choice(per_task)
        received = next(e for e in lifecycle if isinstance(e, TaskReceived))
        events.append(received.model_copy(update={"event_id": uuid.UUID(int=rng.getrandbits(128))}))
    return events
