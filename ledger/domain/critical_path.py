"""A workflow's critical path: the chain of tasks whose finishes decided when the workflow
ended, so an operator knows which step to make faster (or which one held everything up).

Pure. Walk back from the task that finished last: each step goes to the task that made
the current one possible, along the workflow's task-to-task edges (``child``: the task
that sent it; ``callback``: a chord's header task, the one that finished LAST, since the
callback waited for it). A group member sent from outside any task starts the chain: the
group itself is not a task and finished nothing. Ties go to the smaller task id, so the
path is the same on every read; a loop in malformed linkage ends the walk.

For a running workflow it is the path so far: the chain ending at the latest change.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.domain.workflow import Edge, Workflow, WorkflowNode

__all__ = ["CriticalPath", "critical_path"]


@dataclass(frozen=True, slots=True)
class CriticalPath:
    """``tasks`` from the first to the last-finishing one; ``edges`` join them in order."""

    tasks: tuple[str, ...]
    edges: tuple[Edge, ...]


def _first(node: WorkflowNode) -> tuple[float, str]:
    """The order to pick by (``min``): latest finish first, then the smaller id."""
    return -node.date_done.timestamp(), node.task_id


def critical_path(flow: Workflow) -> CriticalPath:
    """The critical path of ``flow`` (every workflow has at least one task, so at least
    that task)."""
    nodes = {t.task_id: t for t in flow.tasks}
    into: dict[str, list[Edge]] = {}
    for edge in flow.edges:
        if edge.kind != "member" and edge.source in nodes:
            into.setdefault(edge.target, []).append(edge)
    tasks = [min(flow.tasks, key=_first).task_id]
    edges: list[Edge] = []
    seen = set(tasks)
    while candidates := [e for e in into.get(tasks[-1], ()) if e.source not in seen]:
        step = min(candidates, key=lambda e: _first(nodes[e.source]))
        tasks.append(step.source)
        edges.append(step)
        seen.add(step.source)
    return CriticalPath(tuple(reversed(tasks)), tuple(reversed(edges)))
