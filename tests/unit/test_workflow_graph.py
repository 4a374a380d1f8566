"""The graph the dashboard draws (pure): every task and group a node, every edge once;
a group of more than ``COLLAPSE_OVER`` members one node counting its members per status,
their edges carried by the group; the critical path and the page's own task marked; a
graph too big to draw sent without its nodes."""

from __future__ import annotations

from ledger.domain.critical_path import critical_path
from ledger.domain.events import TaskFailed, TaskSucceeded
from ledger.domain.workflow import Workflow, build_workflow
from ledger.http.ui.graph import COLLAPSE_OVER, MAX_NODES, Graph, workflow_graph
from tests.unit.test_workflow import task


def graph_of(*tasks: object, current: str | None = None) -> tuple[Workflow, Graph]:
    flow = build_workflow(tasks)  # type: ignore[arg-type]
    assert flow is not None
    return flow, workflow_graph(flow, critical_path(flow), current=current)


def chord(members: int) -> list[object]:
    header = [task(f"m{i:03d}", 1 + i % 5, root_id="p", parent_id="p", group_id="g", callback_id="cb",
                   outcome=TaskFailed if i < 3 else TaskSucceeded) for i in range(members)]  # fmt: skip
    last = max(header, key=lambda t: (t.date_done, t.task_id)).task_id  # type: ignore[attr-defined]
    return [task("p", 0, root_id="p"), *header, task("cb", 9, root_id="p", parent_id=last, group_id="g")]


def test_a_small_workflow_is_drawn_whole_with_the_critical_path_marked() -> None:
    flow, graph = graph_of(*chord(4), current="m001")
    assert graph["drawn"] and graph["collapsed"] == 0
    assert graph["node_count"] == len(graph["nodes"]) == len(flow.tasks) + len(flow.groups) == 7
    assert graph["edge_count"] == len(graph["edges"]) == len(flow.edges) == 4 + 4 + 4
    by_id = {n["id"]: n for n in graph["nodes"]}
    assert by_id["g"]["lines"] == ["group g", "4 tasks"] and "href" not in by_id["g"]
    assert by_id["m001"]["href"] == "/ui/tasks/m001" and by_id["m001"]["lines"] == ["m001", "FAILURE"]
    assert [n["id"] for n in graph["nodes"] if n["current"]] == ["m001"]
    assert {n["id"] for n in graph["nodes"] if n["critical"]} == {"p", "m003", "cb"}
    assert {(e["source"], e["target"]) for e in graph["edges"] if e["critical"]} == {("p", "m003"), ("m003", "cb")}


def test_a_big_group_is_one_node_counting_its_members_and_carrying_their_edges() -> None:
    members = COLLAPSE_OVER + 1
    _, graph = graph_of(*chord(members), current="m007")
    assert graph["collapsed"] == 1 and graph["tasks"] == members + 2
    assert [n["id"] for n in graph["nodes"]] == ["p", "cb", "g"]
    group = graph["nodes"][2]
    assert group["size"] == members and group["counts"] == {"DONE": members - 3, "FAILURE": 3}
    assert group["lines"] == [f"group g: {members} tasks", f"{members - 3} DONE, 3 FAILURE"]
    assert group["current"] and group["critical"]  # the page's task and the path's header task are in it
    assert [(e["source"], e["target"], e["kind"], e["critical"]) for e in graph["edges"]] == [
        ("g", "cb", "callback", True), ("p", "g", "child", True)]  # fmt: skip


def test_a_graph_too_big_to_draw_is_sent_without_its_nodes() -> None:
    chain = [task(f"t{i:04d}", i, root_id="t0000", parent_id=f"t{i - 1:04d}" if i else None)
             for i in range(MAX_NODES + 1)]  # fmt: skip
    _, graph = graph_of(*chain)
    assert not graph["drawn"] and graph["nodes"] == graph["edges"] == []
    assert (graph["node_count"], graph["edge_count"]) == (MAX_NODES + 1, MAX_NODES)
