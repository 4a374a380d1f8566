"""Workflows recorded through the SDK for the browser tests, as Celery records them: a
chain (``parent_id``, one ``root_id``), a chord (a group whose members name the callback,
the callback tagged with the group and sent by the header task that finished last)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import uuid4

from ledger.bootstrap import build_event_log, build_ledger
from ledger.sdk import Ledger
from ledger.settings import Settings
from tests.streams import project_all

W1: Final = {"host": "worker-1.example", "pid": 101, "worker": "celery@worker-1"}
W2: Final = {"host": "worker-2.example", "pid": 202, "worker": "celery@worker-2"}
CHORD: Final = {"a": "etl.extract", "b": "etl.transform", "h1": "etl.load_shard", "h2": "etl.load_shard",
                "h3": "etl.load_shard", "cb": "etl.merge", "d": "etl.report"}  # fmt: skip
"""The chain + chord workflow's tasks (a → b → chord(h1, h2, h3) → cb → d) and their names."""
CRITICAL: Final = ("a", "b", "h2", "cb", "d")
RESULT: Final = {"shard": 3, "rows": [1, 2, 3], "note": "loaded «ok»"}


def ran(ledger: Ledger, task_id: str, start: datetime, took: float, *, failed: bool = False, **links: Any) -> None:
    """One task sent, received, started, then done (or failed) ``took`` seconds later."""
    name = CHORD.get(task_id.split("-")[-1], "fanout.member")
    at = [start + timedelta(seconds=s) for s in (0, 0.5, 1, 1 + took)]
    ledger.pending(task_id, name, args=[1, "x"], kwargs={"user_id": 42}, occurred_at=at[0], **links)
    ledger.received(task_id, name, occurred_at=at[1], emitter=W1, **links)
    ledger.started(task_id, name, occurred_at=at[2], emitter=W1, **links)
    if failed:
        ledger.failed(task_id, name, exc=ValueError("shard unreadable"), occurred_at=at[3], emitter=W1, **links)
    else:
        ledger.succeeded(task_id, name, result={"rows": 10}, runtime=took, occurred_at=at[3], emitter=W1, **links)


def retried_then_done(ledger: Ledger, late: Ledger, task_id: str, start: datetime, **links: Any) -> None:
    """Attempt 0 retried, attempt 1 done on another worker, then attempt 1's RECEIVED
    arriving again, late (another process's emitter, after the DONE)."""
    name, at = CHORD["h3"], [start + timedelta(seconds=s) for s in range(8)]
    kwargs = {"shard": 3, "dry_run": False}
    ledger.pending(task_id, name, args=[3, "shard-3"], kwargs=kwargs, occurred_at=at[0], **links)
    ledger.received(task_id, name, occurred_at=at[1], emitter=W1, **links)
    ledger.started(task_id, name, occurred_at=at[2], emitter=W1, **links)
    ledger.retried(task_id, name, exc=ConnectionError("db away"), occurred_at=at[3], emitter=W1, **links)
    ledger.received(task_id, name, occurred_at=at[4], emitter=W2, **links)
    ledger.started(task_id, name, occurred_at=at[5], emitter=W2, **links)
    ledger.succeeded(task_id, name, result=RESULT, runtime=1.0, occurred_at=at[6], emitter=W2, **links)
    late.received(task_id, name, attempt=1, occurred_at=at[4] + timedelta(milliseconds=1), emitter=W2,
                  event_id=uuid4(), **links)  # a new id: the same step's derived id would be held once


def record_chord_workflow(settings: Settings, prefix: str = "wf") -> dict[str, str]:
    """The chain + chord workflow, projected; its ids by short name (``CHORD``'s keys).
    h2 is the slowest header task, so the critical path is a → b → h2 → cb → d."""
    ids = {short: f"{prefix}-{short}" for short in CHORD}
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    log = build_event_log(settings)
    ledger, late = build_ledger(settings, log), build_ledger(settings, log)
    root = {"root_id": ids["a"]}
    header = {**root, "parent_id": ids["b"], "group_id": f"{prefix}-g", "callback_id": ids["cb"]}
    try:
        ran(ledger, ids["a"], t0, 1.0, **root)
        ran(ledger, ids["b"], t0 + timedelta(seconds=3), 1.0, parent_id=ids["a"], **root)
        ran(ledger, ids["h1"], t0 + timedelta(seconds=6), 1.0, **header)
        ran(ledger, ids["h2"], t0 + timedelta(seconds=6), 20.0, **header)
        retried_then_done(ledger, late, ids["h3"], t0 + timedelta(seconds=6), **header)
        ran(ledger, ids["cb"], t0 + timedelta(seconds=30), 1.0, parent_id=ids["h2"], group_id=f"{prefix}-g", **root)
        ran(ledger, ids["d"], t0 + timedelta(seconds=33), 1.0, parent_id=ids["cb"], **root)
    finally:
        log.close()
    project_all(settings)
    return ids


def record_big_group(settings: Settings, members: int, failed: int) -> str:
    """A task fanning out a chord of ``members`` tasks (the first ``failed`` of them fail)
    into a callback, projected; returns the callback's id."""
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    log = build_event_log(settings)
    ledger = build_ledger(settings, log)
    links = {"root_id": "big-a", "parent_id": "big-a", "group_id": "big-g", "callback_id": "big-cb"}
    try:
        ran(ledger, "big-a", t0, 1.0, root_id="big-a")
        for i in range(members):
            ran(ledger, f"big-m{i:04d}", t0 + timedelta(seconds=3), 1.0 + i / 1000, failed=i < failed, **links)
        ran(ledger, "big-cb", t0 + timedelta(seconds=9), 1.0, root_id="big-a", parent_id=f"big-m{members - 1:04d}",
            group_id="big-g")  # fmt: skip
    finally:
        log.close()
    project_all(settings)
    return "big-cb"
