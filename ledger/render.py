"""Terminal rendering of the views (rich tables) and their JSON form for scripts."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ledger.domain.fold import TaskState
from ledger.domain.statuses import TaskStatus
from ledger.domain.workflow import Workflow, WorkflowNode
from ledger.projections.failures import FailureGroup
from ledger.projections.queries import PeriodicTaskMeta
from ledger.projections.series import Series
from ledger.projections.timeline import Timeline
from ledger.projections.workers import Worker

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
                      who, change, "[yellow]late[/]" if e.late else "[yellow]reconciled[/]" if e.reconciled_from
                      else "")  # fmt: skip
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
            reopened = group.reopened_at is not None and group.reopened_at > group.resolved_at
            status = "[red]open (reopened)[/]" if reopened else "[red]open (recurred)[/]"
        table.add_row(group.fingerprint, status, group.task_name or "—", f"{group.exc_type}: {group.message}",
                      f"{group.count:,}", f"{group.tasks:,}", when(group.first_seen), when(group.last_seen),
                      sparkline(group.trend))  # fmt: skip
    return table


def worker_status(worker: Worker) -> str:
    """Online, or offline and why: it said so (stopped), or its heartbeats stopped."""
    if worker.status == "online":
        return "[green]online[/]"
    return "[red]offline (stopped)[/]" if worker.offline_at is not None else "[red]offline (no heartbeat)[/]"


def workers_table(workers: Iterable[Worker], title: str) -> Table:
    table = Table(title=title)
    for column in ("worker", "status", "last heartbeat", "load avg", "processed", "active", "software",
                   "first seen"):  # fmt: skip
        table.add_column(column, justify="right" if column in ("processed", "active") else "left")
    for w in workers:
        load = " ".join(f"{n:.2f}" for n in w.loadavg) if w.loadavg else "—"
        table.add_row(w.hostname, worker_status(w), when(w.last_heartbeat), load,
                      "—" if w.processed is None else f"{w.processed:,}", "—" if w.active is None else str(w.active),
                      w.software or "—", when(w.first_seen))  # fmt: skip
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


def workflow_tree(flow: Workflow, *, members: int | None = 20) -> Tree:
    """A workflow as a tree: each task once, under the task that sent it, a group's members
    under the group, a chord's callback under its header's group. ``members`` caps the
    members shown per group (None: all); the rest are counted by status."""
    failed = f" at {', '.join(flow.failed_at[:3])}{' …' if len(flow.failed_at) > 3 else ''}" if flow.failed_at else ""
    took = f" in {flow.duration:.3f}s" if flow.duration is not None else ""
    sizes = f"{_count(len(flow.tasks), 'task')} · {_count(len(flow.groups), 'group')}"
    heading = f"{failed} · {sizes} · started {when(flow.started_at)}{took}"
    tree = Tree(Text.assemble((flow.state.upper(), _FLOW_STYLE[flow.state]), heading))
    below: dict[str | None, list[str]] = {}
    for node, parent in workflow_placement(flow).items():
        below.setdefault(parent, []).append(node)
    tasks = {t.task_id: t for t in flow.tasks}
    callbacks = {e.target for e in flow.edges if e.kind == "callback"}
    shown: set[str] = set()

    def add(branch: Tree, node: str) -> None:
        shown.add(node)
        children = [child for child in below.get(node, []) if child not in shown]
        over: list[str] = []
        if node in tasks:
            sub = branch.add(_task_label(tasks[node], "callback " if node in callbacks else ""))
        else:
            sub = branch.add(Text.assemble(("group ", "bold"), node, f" · {_count(len(flow.groups[node]), 'task')}"))
            group = set(flow.groups[node])
            over = [c for c in children if c in group][members:] if members is not None else []
            shown.update(over)
        for child in children:
            if child not in shown:
                add(sub, child)
        if over:
            counts = Counter(tasks[c].status.value for c in over)
            summary = ", ".join(f"{n:,} {status}" for status, n in counts.most_common())
            sub.add(Text(f"… {len(over):,} more members: {summary} (--all shows them)", "dim"))

    for node in [*below.get(None, []), *tasks]:  # then any node a loop in the linkage hid
        if node not in shown:
            add(tree, node)
    return tree


def workflow_placement(flow: Workflow) -> dict[str, str | None]:
    """Where each node (task or group id) hangs in the tree, in order of appearance: a
    chord's callback under its header's group, a member under its group, a group under the
    task that sent all its members, any other task under its parent; None: at the top."""
    parent = {t.task_id: t.parent_id for t in flow.tasks}
    group_of = {member: group for group, group_members in flow.groups.items() for member in group_members}
    header: dict[str, str] = {}
    for edge in flow.edges:
        if edge.kind == "callback":
            header.setdefault(edge.target, edge.source)
    placement: dict[str, str | None] = {}
    for task_id, sent_by in parent.items():
        group = group_of.get(task_id)
        if group is not None and group not in placement:  # a group appears with its first member
            senders = {parent[m] for m in flow.groups[group]}
            sender = senders.pop() if len(senders) == 1 else None
            placement[group] = sender if sender in parent and group_of.get(sender) != group else None
        if task_id in header:
            placement[task_id] = group_of.get(header[task_id], header[task_id])
        else:
            placement[task_id] = group if group is not None else sent_by if sent_by in parent else None
    return placement


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


_FLOW_STYLE = {"running": "cyan", "failed": "red", "revoked": "magenta", "done": "green"}


def _task_label(task: WorkflowNode, kind: str) -> Text:
    label = Text.assemble((kind, "bold"), task.task_id, "  ", task.name or "—", "  ",
                          (task.status.value, STATUS_STYLE[task.status]))  # fmt: skip
    label.append(f"  attempts {task.attempts}  {task.worker or '—'}")
    label.append(f"  {task.runtime:.3f}s" if task.runtime is not None else "  —")
    if task.exc_type:
        label.append(f"  {task.exc_type}: {task.exc_message or ''}", "red")
    return label
