"""What the CLI prints: table cells under the right heading, JSON that scripts can read."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import uuid4

from rich.table import Table

from ledger import render
from ledger.domain.events import Emitter
from ledger.domain.periodic import PeriodicState
from ledger.domain.statuses import TaskStatus
from ledger.eventlog.base import Position
from ledger.projections.queries import PeriodicTaskMeta
from ledger.projections.timeline import Timeline, TimelineEntry

NOW = datetime(2026, 3, 1, 2, 13, tzinfo=UTC)


def cells(table: Table) -> dict[str, list[str]]:
    """Each column's heading and its cells, as rich holds them."""
    return {str(column.header): [str(cell) for cell in column.cells] for column in table.columns}


def periodic(dup: int, due: bool) -> PeriodicTaskMeta:
    state = PeriodicState(name="every-minute", task="app.tick", interval_seconds=60.0, enabled=True,
                          last_run_at=NOW, total_run_count=3, last_run_task_id="tick-3", config_at=NOW,
                          config_event_id=uuid4(), last_event_id=uuid4())  # fmt: skip
    return PeriodicTaskMeta(state=state, last_run_status=TaskStatus.DONE, last_success_at=NOW, last_failure_at=None,
                            missed_runs=0, duplicate_firings=dup, next_run_at=NOW, due=due)  # fmt: skip


def test_the_periodic_table_shows_duplicate_firings_under_dup_and_due_under_due() -> None:
    table = cells(render.periodic_table([periodic(dup=2, due=True), periodic(dup=0, due=False)]))
    assert table["dup"] == ["2", "0"]
    assert table["due"] == ["[yellow]due[/]", ""]
    assert len({len(column) for column in table.values()}) == 1  # every column has a cell per row


def test_counts_show_every_status_with_zeros_and_the_total() -> None:
    from ledger.domain.statuses import every_status

    table = cells(render.counts_table(every_status({TaskStatus.DONE: 3})))
    assert [s for s in table["status"] if "total" not in s] == [render.status_text(s) for s in TaskStatus]
    assert table["tasks"] == ["0", "0", "0", "0", "0", "3", "0", "[bold]3[/]"]


def test_json_output_writes_pydantic_values_as_objects() -> None:
    emitter = Emitter(host="worker-1.example", pid=42, worker="celery@worker-1")
    entry = TimelineEntry(position=Position(0, 7), event_id=uuid4(), occurred_at=NOW, type="task.started", attempt=0,
                          emitter=emitter, status=TaskStatus.STARTED, status_before=None,
                          status_after=TaskStatus.STARTED, late=False)  # fmt: skip
    out = json.loads(render.as_json(Timeline("t-1", [entry], [], True)))
    assert out["entries"][0]["emitter"] == {"host": "worker-1.example", "pid": 42, "worker": "celery@worker-1"}
    assert out["entries"][0]["occurred_at"] == NOW.isoformat() and out["entries"][0]["status_after"] == "STARTED"
