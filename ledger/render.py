"""Terminal rendering of the views (rich tables) and their JSON form for scripts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from ledger.domain.fold import TaskState
from ledger.domain.statuses import TaskStatus
from ledger.projections.failures import FailureGroup
from ledger.projections.queries import PeriodicTaskMeta
from ledger.projections.series import Series
from ledger.projections.timeline import Timeline

STATUS_STYLE = {
    TaskStatus.DONE: "green",
    TaskStatus.FAILURE: "red",
    TaskStatus.RETRY: "yellow",
    TaskStatus.REVOKED: "magenta",
    TaskStatus.STARTED: "cyan",
    TaskStatus.RECEIVED: "blue",
    TaskStatus.PENDING: "white",
}


def when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def status_text(status: TaskStatus | None) -> str:
    if status is None:
        return "—"
    return f"[{STATUS_STYLE[status]}]{status.value}[/]"


def counts_table(counts: Mapping[TaskStatus, int], title: str = "Tasks by status") -> Table:
    table = Table(title=title)
    table.add_column("status")
    table.add_column("tasks", justify="right")
    for status, count in counts.items():
        table.add_row(status_text(status), f"{count:,}")
    table.add_row("[bold]total[/]", f"[bold]{sum(counts.values()):,}[/]")
    return table


def tasks_table(tasks: Iterable[TaskState], title: str, *, error: bool = False) -> Table:
    table = Table(title=title)
    for column in ("task id", "name", "status", "retries", "worker", "runtime", "date done"):
        table.add_column(column, justify="right" if column in ("retries", "runtime") else "left")
    if error:
        table.add_column("exception")
    for task in tasks:
        row = [
            task.task_id,
            task.name or "—",
            status_text(task.status),
            str(task.retries),
            task.worker or "—",
            f"{task.runtime:.3f}s" if task.runtime is not None else "—",
            when(task.date_done),
        ]
        if error:
            row.append(f"{task.exc_type}: {task.exc_message}" if task.exc_type else "—")
        table.add_row(*row)
    return table


def timeline_table(timeline: Timeline) -> Table:
    title = f"Timeline of {timeline.task_id}" + (" (in progress)" if timeline.in_progress else "")
    table = Table(title=title, caption="\n".join(f"gap: {g.message}" for g in timeline.gaps) or None)
    for column in ("position", "occurred at", "event", "attempt", "emitted by", "status", "late"):
        table.add_column(column)
    for e in timeline.entries:
        who = e.emitter.worker or f"{e.emitter.host}:{e.emitter.pid}"
        change = f"{status_text(e.status_before)} → {status_text(e.status_after)}"
        table.add_row(f"{e.position.partition}:{e.position.offset}", when(e.occurred_at), e.type, str(e.attempt),
                      who, change, "[yellow]late[/]" if e.late else "")  # fmt: skip
    return table


def periodic_table(items: Iterable[PeriodicTaskMeta]) -> Table:
    table = Table(title="Periodic tasks")
    for column in ("name", "task", "every", "enabled", "last run at", "total runs", "last run", "missed", "dup", "due"):
        table.add_column(column)
    for item in items:
        state = item.state
        table.add_row(
            state.name,
            state.task or "—",
            f"{state.interval_seconds:g}s" if state.interval_seconds else "—",
            "yes" if state.enabled else "no",
            when(state.last_run_at),
            str(state.total_run_count),
            status_text(item.last_run_status),
            str(item.missed_runs),
            str(item.duplicate_firings),
            "[yellow]due[/]" if item.due else "",
        )
    return table


_BARS = " ▁▂▃▄▅▆▇█"


def sparkline(counts: list[int]) -> str:
    """Counts as bar heights relative to the largest: a trend at a glance."""
    top = max(counts, default=0)
    return "".join(_BARS[0 if not n else max(1, round(n / top * (len(_BARS) - 1)))] for n in counts)


def failures_table(groups: Iterable[FailureGroup], title: str) -> Table:
    table = Table(title=title)
    for column in ("fingerprint", "status", "name", "exception", "count", "tasks", "first seen", "last seen",
                   "trend"):  # fmt: skip
        table.add_column(column, justify="right" if column in ("count", "tasks") else "left")
    for group in groups:
        status = "[red]open[/]" if group.status == "open" else "[green]resolved[/]"
        if group.status == "open" and group.resolved_at is not None:
            status = "[red]open (recurred)[/]"
        table.add_row(group.fingerprint, status, group.task_name or "—", f"{group.exc_type}: {group.message}",
                      f"{group.count:,}", f"{group.tasks:,}", when(group.first_seen), when(group.last_seen),
                      sparkline(group.trend))  # fmt: skip
    return table


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def series_table(series: Series, title: str) -> Table:
    """One row per bucket: the counts, then runtime and queue wait p50/p95/p99 in seconds."""
    table = Table(title=title)
    table.add_column("bucket")
    for column in ("published", "started", "succeeded", "failed", "retried", "revoked"):
        table.add_column(column, justify="right")
    for column in ("runtime p50/p95/p99 s", "queue wait p50/p95/p99 s"):
        table.add_column(column, justify="right")
    for p in series.points:
        table.add_row(
            when(p.start), *(f"{n:,}" for n in (p.published, p.started, p.succeeded, p.failed, p.retried, p.revoked)),
            *(" / ".join(_seconds(v) for v in (q.p50, q.p95, q.p99)) for q in (p.runtime, p.queue_wait)),
        )  # fmt: skip
    return table


def as_json(value: Any) -> str:
    """JSON for ``--json`` output: dataclasses as objects, datetimes as ISO 8601."""
    from dataclasses import asdict, is_dataclass

    def default(obj: Any) -> Any:
        if is_dataclass(obj) and not isinstance(obj, type):
            return asdict(obj)
        if isinstance(obj, BaseModel):  # an event's emitter, say
            return obj.model_dump(mode="json")
        if isinstance(obj, datetime):
            return obj.isoformat()
        return str(obj)

    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    elif isinstance(value, list):
        value = [asdict(v) if is_dataclass(v) and not isinstance(v, type) else v for v in value]
    return json.dumps(value, default=default, indent=2)


def console() -> Console:
    """Rich console; when output is piped, wide enough that tables do not wrap."""
    terminal = Console(highlight=False)
    return terminal if terminal.is_terminal else Console(highlight=False, width=160)
