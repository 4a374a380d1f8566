"""A workflow: the tasks that share a root or a group, as nodes and edges a UI can draw,
and its overall state. Pure: the reader finds the tasks, this decides what they mean.

Edges, each with its kind:
- ``child``: ``parent_id → task_id``, a task sent by another (a chain's next step, a task
  a task sent);
- ``member``: ``group_id → task_id``, a task of a group (a group is a node of its own: it
  is not a task);
- ``callback``: ``task_id → callback_id``, a chord's header task to the callback that runs
  once the whole header finished. Celery sends that callback from the header task that
  finished last, and tags the chord's body (the callback and any tasks chained after it)
  with the header's group id: a chord's members are the tasks that name its callback, and
  the callback's ``child`` edge from its sender is left out (the ``callback`` edges say it).

The state: ``running`` while any task is unfinished, else ``failed`` when a task failed
(``failed_at`` names them, first failure first), else ``revoked`` when one was, else
``done``. The duration runs from the first task's appearance to the last finish.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from ledger.domain.fold import TaskState
from ledger.domain.statuses import READY_STATES, TaskStatus

__all__ = ["Edge", "Workflow", "WorkflowState", "build_workflow"]

EdgeKind = Literal["child", "member", "callback"]
WorkflowState = Literal["running", "failed", "revoked", "done"]
_STATE_RULES: Final[tuple[tuple[TaskStatus, WorkflowState], ...]] = (
    (TaskStatus.FAILURE, "failed"),
    (TaskStatus.REVOKED, "revoked"),
)
"""Once every task has finished: the first status here that some task has decides."""


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    kind: EdgeKind


@dataclass(frozen=True, slots=True)
class Workflow:
    """``tasks`` in order of first appearance; ``groups``: each group's members, in that
    order."""

    roots: tuple[str, ...]
    tasks: tuple[TaskState, ...]
    groups: dict[str, tuple[str, ...]]
    edges: tuple[Edge, ...]
    state: WorkflowState
    failed_at: tuple[str, ...]
    started_at: datetime
    finished_at: datetime | None
    duration: float | None
    """Seconds from ``started_at`` to ``finished_at``; None while running."""


def build_workflow(found: Iterable[TaskState]) -> Workflow | None:
    """The workflow of these tasks (all of one workflow, as the reader found them); None
    for none."""
    tasks = tuple(sorted(found, key=lambda t: (t.first_seen, t.task_id)))
    if not tasks:
        return None
    ids = {t.task_id for t in tasks}
    callbacks = {t.callback_id for t in tasks if t.callback_id in ids}
    chords = {t.group_id for t in tasks if t.callback_id is not None}
    edges: list[Edge] = [Edge(t.task_id, t.callback_id, "callback") for t in tasks
                         if t.callback_id is not None and t.callback_id in ids]  # fmt: skip
    groups: dict[str, list[str]] = {}
    for task in tasks:
        if task.parent_id is not None and task.parent_id in ids and task.task_id not in callbacks:
            edges.append(Edge(task.parent_id, task.task_id, "child"))
        if task.group_id is not None and (task.group_id not in chords or task.callback_id is not None):
            groups.setdefault(task.group_id, []).append(task.task_id)
            edges.append(Edge(task.group_id, task.task_id, "member"))
    state, failed = _state(tasks)
    started = min(t.first_seen for t in tasks)
    finished = max(t.date_done for t in tasks) if state != "running" else None
    return Workflow(
        roots=tuple(sorted({t.root_id or t.task_id for t in tasks if (t.root_id or t.task_id) in ids})),
        tasks=tasks,
        groups={group: tuple(members) for group, members in groups.items()},
        edges=tuple(edges),
        state=state,
        failed_at=failed,
        started_at=started,
        finished_at=finished,
        duration=None if finished is None else max(0.0, (finished - started).total_seconds()),
    )


def _state(tasks: tuple[TaskState, ...]) -> tuple[WorkflowState, tuple[str, ...]]:
    failed = tuple(t.task_id for t in sorted(tasks, key=lambda t: (t.date_done, t.task_id))
                   if t.status == TaskStatus.FAILURE)  # fmt: skip
    if any(t.status not in READY_STATES for t in tasks):
        return "running", failed
    statuses = {t.status for t in tasks}
    for status, state in _STATE_RULES:
        if status in statuses:
            return state, failed
    return "done", failed
