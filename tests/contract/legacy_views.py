"""Views as the stores before SQLAlchemy and Alembic left them: for the upgrade tests.

``legacy/<backend>.sql`` holds the SQL-file migrations of that code verbatim (a section per
version, as its runner applied them, recording each in ``schema_migrations``), and
``legacy/rows.json`` the rows its stores wrote for ``first_batch()``, dumped as stored
(SQLite: the values themselves; PostgreSQL: each value's text). Both were made once, with
commit fed8384's ``SqliteViewStore`` and ``PostgresViewStore`` projecting ``first_batch()``
(``projection="views"``, ``topic="topic"``, partition 0 from offset 0).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from ledger.domain.events import (
    AnyEvent,
    Emitter,
    PeriodicTaskRegistered,
    PeriodicTaskTriggered,
    TaskFailed,
    TaskPending,
    TaskReceived,
    TaskRetried,
    TaskStarted,
    TaskSucceeded,
)
from ledger.wire import EVENT_ADAPTER

HERE = Path(__file__).with_name("legacy")
T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
W1 = Emitter(host="worker-1.example", pid=11, worker="celery@w1")
API = Emitter(host="api.example", pid=7)
"""Every event names its emitter: the stored payloads must not depend on who ran the test."""


def _id(n: int) -> UUID:
    return UUID(int=n)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def first_batch() -> list[AnyEvent]:
    """Every kind of value the views store: JSON with escapes and non-ASCII, etas, a retry
    with exception args, a failure with a traceback, a late event, a periodic task."""
    kwargs = {"path": "C:\\tmp\\x", "note": "tab\there\nnewline", "name": "é✓"}
    return [_version_1(event) for event in [
        TaskPending(task_id="t-done", task_name="app.add", args=[1, 2.5, None], kwargs=kwargs, event_id=_id(1),
                    occurred_at=_at(0), eta=_at(30), emitter=API),
        TaskStarted(task_id="t-done", event_id=_id(2), occurred_at=_at(31), emitter=W1),
        TaskSucceeded(task_id="t-done", result={"sum": 3.5, "list": [1, "two"]}, runtime=0.125, event_id=_id(3),
                      occurred_at=_at(32), emitter=W1),
        TaskReceived(task_id="t-done", event_id=_id(4), occurred_at=_at(1), emitter=W1),  # late: a refold
        TaskStarted(task_id="t-retry", task_name="app.charge", event_id=_id(5), occurred_at=_at(2), emitter=W1),
        TaskRetried(task_id="t-retry", exc_type="KeyError", exc_message="'id'", exc_args=["id", {"n": 1}],
                    traceback="Traceback (most recent call last):\n  KeyError: 'id'", eta=_at(60), event_id=_id(6),
                    occurred_at=_at(3), emitter=W1),
        TaskStarted(task_id="t-fail", task_name="app.div", event_id=_id(7), occurred_at=_at(4), emitter=W1),
        TaskFailed(task_id="t-fail", exc_type="ZeroDivisionError", exc_message="division by zero",
                   traceback="Traceback…\n\tx / 0", runtime=2.0, event_id=_id(8), occurred_at=_at(5), emitter=W1),
        PeriodicTaskRegistered(name="nightly", task="app.report", interval_seconds=86400.0, event_id=_id(9),
                               occurred_at=_at(6), emitter=API),
        PeriodicTaskTriggered(name="nightly", task_id="t-done", event_id=_id(10), occurred_at=_at(7), emitter=API),
    ]]  # fmt: skip


def _version_1(event: AnyEvent) -> AnyEvent:
    """The views before Alembic were made of events of schema version 1."""
    return EVENT_ADAPTER.validate_python({**event.model_dump(), "version": 1})


def second_batch() -> list[AnyEvent]:
    """What the upgraded views go on to write: the retry's next attempt, a new task."""
    return [
        TaskSucceeded(task_id="t-retry", attempt=1, result=None, runtime=1.5, event_id=_id(11), occurred_at=_at(70),
                      emitter=W1),
        TaskPending(task_id="t-new", task_name="app.new", event_id=_id(12), occurred_at=_at(71), emitter=API),
        PeriodicTaskTriggered(name="nightly", task_id="t-new", event_id=_id(13), occurred_at=_at(72),
                              emitter=API),
    ]  # fmt: skip


def legacy_sql(backend: str, up_to: int = 4) -> list[tuple[int, str, list[str]]]:
    """(version, name, statements) of the old migrations of ``backend``, up to ``up_to``."""
    text = (HERE / f"{backend}.sql").read_text()
    sections = re.split(r"^-- version (\d+) (\w+)\n", text, flags=re.MULTILINE)[1:]
    found = []
    for version, name, body in zip(sections[::3], sections[1::3], sections[2::3], strict=True):
        if int(version) <= up_to:
            statements = [s.strip() for s in body.split(";") if s.strip() and not _only_comments(s)]
            found.append((int(version), name, statements))
    return found


def _only_comments(statement: str) -> bool:
    return all(line.strip().startswith("--") or not line.strip() for line in statement.splitlines())


def legacy_rows(backend: str) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """Per table: its columns and the rows the old store wrote, as stored."""
    tables: dict[str, dict[str, Any]] = json.loads((HERE / "rows.json").read_text())[backend]
    return {name: (table["columns"], table["rows"]) for name, table in tables.items()}
