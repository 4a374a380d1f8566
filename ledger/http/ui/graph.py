"""A workflow as the graph the pages draw: nodes and edges as JSON, built here from the
domain's ``Workflow`` (and its critical path), so the browser only lays it out (dagre)
and draws it; the workflow page and the task page embed the same shape.

Big groups are collapsed: a group of more than ``COLLAPSE_OVER`` members is one node
saying how many tasks it holds per status, and every edge to or from one of its members
becomes an edge to or from the group (once per kind), the same cut as ``ledger workflow``
makes. A graph still bigger than ``MAX_NODES`` is not drawn (the page says so and links
the JSON): no page loads unbounded data.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Final
from urllib.parse import quote

from ledger.domain.critical_path import CriticalPath
from ledger.domain.workflow import Workflow, WorkflowNode

__all__ = ["COLLAPSE_OVER", "MAX_NODES", "Graph", "workflow_graph"]

COLLAPSE_OVER: Final = 20
MAX_NODES: Final = 600
LABEL: Final = 30
Graph = dict[str, Any]


def _short(text: str, limit: int = LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _task_node(task: WorkflowNode) -> dict[str, Any]:
    attempts = f" · {task.attempts} attempts" if task.attempts > 1 else ""
    return {"id": task.task_id, "kind": "task", "status": task.status.value,
            "href": f"/ui/tasks/{quote(task.task_id, safe='')}",
            "lines": [_short(task.name or task.task_id), f"{task.status.value}{attempts}"],
            "title": f"{task.name or 'task'} {task.task_id}: {task.status.value}"}  # fmt: skip


def _group_node(group: str, members: list[WorkflowNode], collapsed: bool) -> dict[str, Any]:
    counts = Counter(m.status.value for m in members)
    summary = ", ".join(f"{n:,} {status}" for status, n in sorted(counts.items(), key=lambda c: (-c[1], c[0])))
    size = f"{len(members):,} task{'' if len(members) == 1 else 's'}"
    name = _short(f"group {group}", LABEL - 6 if collapsed else LABEL)
    lines = [f"{name}: {size}", summary] if collapsed else [name, size]
    return {"id": group, "kind": "group", "status": "group", "collapsed": collapsed, "size": len(members),
            "counts": dict(counts), "lines": lines, "title": f"group {group}: {size} ({summary})"}  # fmt: skip


def workflow_graph(flow: Workflow, path: CriticalPath, current: str | None = None) -> Graph:
    """The drawable graph of ``flow``: ``nodes``, ``edges`` (each marked ``critical`` when
    on ``path``), and ``drawn`` False when it is too big to draw. ``current``: the task
    whose page shows it (or the group it was collapsed into) is marked."""
    tasks = {t.task_id: t for t in flow.tasks}
    collapsed = {g for g, members in flow.groups.items() if len(members) > COLLAPSE_OVER}
    into = {m: g for g in collapsed for m in flow.groups[g]}

    def rep(node: str) -> str:
        return into.get(node, node)

    nodes = [_task_node(t) for t in flow.tasks if t.task_id not in into]
    nodes += [_group_node(g, [tasks[m] for m in ms], g in collapsed) for g, ms in flow.groups.items()]
    on_path = {rep(t) for t in path.tasks}
    for node in nodes:
        node["critical"] = node["id"] in on_path
        node["current"] = current is not None and node["id"] == rep(current)
    critical = {(rep(e.source), rep(e.target), e.kind) for e in path.edges}
    edges: dict[tuple[str, str, str], dict[str, Any]] = {}
    for edge in flow.edges:
        key = (rep(edge.source), rep(edge.target), edge.kind)
        if key[0] != key[1] and key not in edges:
            edges[key] = {"source": key[0], "target": key[1], "kind": edge.kind, "critical": key in critical}
    drawn = len(nodes) <= MAX_NODES
    return {"nodes": nodes if drawn else [], "edges": list(edges.values()) if drawn else [], "drawn": drawn,
            "node_count": len(nodes), "edge_count": len(edges), "tasks": len(flow.tasks),
            "groups": len(flow.groups), "collapsed": len(collapsed)}  # fmt: skip
