"""A workflow as JSON a UI can draw: nodes (tasks and groups) and edges, plus the overall
state. One shape for ``GET /tasks/{id}/workflow``, ``GET /workflows/{root_id}`` and
``ledger workflow --json``, built from the domain's ``Workflow`` in one place (outside
``ledger.http``, so the CLI, which the projector's process imports, never loads the HTTP
package)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ledger.domain.statuses import TaskStatus
from ledger.domain.workflow import Workflow, WorkflowNode, WorkflowState

__all__ = ["EdgeOut", "GroupNodeOut", "TaskNodeOut", "WorkflowOut"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TaskNodeOut(_Out):
    """A task of the workflow (``id`` is its task id)."""

    kind: Literal["task"] = "task"
    id: str
    name: str | None
    status: TaskStatus
    attempts: int = Field(description="runs so far: retries + 1")
    worker: str | None
    runtime: float | None = Field(description="seconds, of the finishing attempt")
    exc_type: str | None
    exc_message: str | None
    first_seen: datetime
    date_started: datetime | None
    date_done: datetime = Field(description="when the status last changed")
    root_id: str | None
    parent_id: str | None
    group_id: str | None
    callback_id: str | None
    queue: str | None

    @classmethod
    def from_node(cls, node: WorkflowNode) -> TaskNodeOut:
        return cls(id=node.task_id, name=node.name, status=node.status, attempts=node.attempts, worker=node.worker,
                   runtime=node.runtime, exc_type=node.exc_type, exc_message=node.exc_message,
                   first_seen=node.first_seen, date_started=node.date_started, date_done=node.date_done,
                   root_id=node.root_id, parent_id=node.parent_id, group_id=node.group_id,
                   callback_id=node.callback_id, queue=node.queue)  # fmt: skip


class GroupNodeOut(_Out):
    """A group (not a task: its id is the group id its members carry)."""

    kind: Literal["group"] = "group"
    id: str
    size: int = Field(description="members in the workflow")
    statuses: dict[TaskStatus, int] = Field(description="members per status")


class EdgeOut(_Out):
    """``child``: parent task → task it sent; ``member``: group → task; ``callback``: a
    chord's header task → the callback it feeds."""

    source: str
    target: str
    kind: Literal["child", "member", "callback"]


class WorkflowOut(_Out):
    """The whole workflow a task belongs to, and its overall state."""

    roots: list[str]
    state: WorkflowState = Field(description="running while a task is unfinished, else failed, revoked or done")
    failed_at: list[str] = Field(description="the failed tasks, first failure first")
    started_at: datetime
    finished_at: datetime | None
    duration: float | None = Field(description="seconds from the first task's appearance to the last finish")
    tasks: int
    nodes: list[Annotated[TaskNodeOut | GroupNodeOut, Field(discriminator="kind")]]
    edges: list[EdgeOut]

    @classmethod
    def from_workflow(cls, flow: Workflow) -> WorkflowOut:
        status = {t.task_id: t.status for t in flow.tasks}
        groups = [GroupNodeOut(id=group, size=len(members), statuses=dict(Counter(status[m] for m in members)))
                  for group, members in flow.groups.items()]  # fmt: skip
        return cls(
            roots=list(flow.roots),
            state=flow.state,
            failed_at=list(flow.failed_at),
            started_at=flow.started_at,
            finished_at=flow.finished_at,
            duration=flow.duration,
            tasks=len(flow.tasks),
            nodes=[*(TaskNodeOut.from_node(t) for t in flow.tasks), *groups],
            edges=[EdgeOut(source=e.source, target=e.target, kind=e.kind) for e in flow.edges],
        )
