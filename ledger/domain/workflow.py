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

Nodes are ``WorkflowNode``s: the columns a tree needs (status, attempts, worker, times,
linkage), not the task's whole row (results, arguments, tracebacks), so a workflow of
10,000 tasks moves and builds only what it draws.

The state: ``running`` while any task is unfinished, else ``failed`` when a task failed
(``failed_at`` names them, first failure first), else ``revoked`` when one was, else
``done``. The duration runs from the first task's appearance to the last finish.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Final, Literal, NamedTuple

from ledger.domain.fold import TaskState
from ledger.domain.statuses import READY_STATES, TaskStatus

__all__ = ["NODE_FIELDS", "Edge", "Workflow", "WorkflowNode", "WorkflowState", "build_workflow"]

EdgeKind = Literal["child", "member", "callback"]
WorkflowState = Literal["running", "failed", "revoked", "done"]
_STATE_RULES: Final[tuple[tuple[TaskStatus, WorkflowState], ...]] = (
    (TaskStatus.FAILURE, "failed"),
    (TaskStatus.REVOKED, "revoked"),
)
"""Once every task has finished: the first status here that some task has decides."""
_APPEARANCE = attrgetter("first_seen", "task_id")


class WorkflowNode(NamedTuple):
    """One task of a workflow: what a tree of it shows (each field a ``TaskState`` field).
    A named tuple, as ``Edge``: a big workflow makes 10,000 of each, at a sixth of a frozen
    dataclass's cost."""

    task_id: str
    name: str | None
    status: TaskStatus
    retries: int
    worker: str | None
    runtime: float | None
    exc_type: str | None
    exc_message: str | None
    first_seen: datetime
    date_started: datetime | None
    date_done: datetime
    root_id: str | None
    parent_id: str | None
    group_id: str | None
    callback_id: str | None
    queue: str | None

    @property
    def attempts(self) -> int:
        """Runs of the task so far: its retries plus the one it is in."""
        return self.retries + 1

    @classmethod
    def of(cls, state: TaskState) -> WorkflowNode:
        return cls(*(getattr(state, name) for name in NODE_FIELDS))


NODE_FIELDS: Final[tuple[str, ...]] = WorkflowNode._fields
"""``WorkflowNode``'s fields in order: the ``task_meta`` columns a reader selects for it."""


class Edge(NamedTuple):
    source: str
    target: str
    kind: EdgeKind


@dataclass(frozen=True, slots=True)
class Workflow:
    """``tasks`` in order of first appearance; ``groups``: each group's members, in that
    order."""

    roots: tuple[str, ...]
    tasks: tuple[WorkflowNode, ...]
    groups: dict[str, tuple[str, ...]]
    edges: tuple[Edge, ...]
    state: WorkflowState
    failed_at: tuple[str, ...]
    started_at: datetime
    finished_at: datetime | None
    duration: float | None
    """Seconds from ``started_at`` to ``finished_at``; None while running."""

    def rooted_at(self, task_id: str) -> bool:
        """Whether ``task_id`` is a root of this workflow: one of ``roots``, or the root its
        tasks name (a root whose own row the views do not hold)."""
        return task_id in self.roots or any(t.root_id == task_id for t in self.tasks)


def build_workflow(found: Iterable[WorkflowNode | TaskState]) -> Workflow | None:
    """The workflow of these tasks (all of one workflow, as the reader found them); None
    for none."""
    nodes = (t if isinstance(t, WorkflowNode) else WorkflowNode.of(t) for t in found)
    tasks = tuple(sorted(nodes, key=_APPEARANCE))
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
    started = tasks[0].first_seen
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


def _state(tasks: tuple[WorkflowNode, ...]) -> tuple[WorkflowState, tuple[str, ...]]:
    failures = [t for t in tasks if t.status == TaskStatus.FAILURE]
    failed = tuple(t.task_id for t in sorted(failures, key=lambda t: (t.date_done, t.task_id)))
    if any(t.status not in READY_STATES for t in tasks):
        return "running", failed
    statuses = {t.status for t in tasks}
    for status, state in _STATE_RULES:
        if status in statuses:
            return state, failed
    return "done", failed
