"""The critical path (pure): from the task that finished last back along the edges that
made each step possible, through a chord's slowest header task; deterministic on ties;
a loop in malformed linkage ends the walk."""

from __future__ import annotations

from ledger.domain.critical_path import critical_path
from ledger.domain.events import TaskFailed
from ledger.domain.workflow import Edge, Workflow, build_workflow
from tests.unit.test_workflow import task


def flow_of(*tasks: object) -> Workflow:
    flow = build_workflow(tasks)  # type: ignore[arg-type]
    assert flow is not None
    return flow


def test_a_chain_then_a_chord_goes_through_the_header_task_that_finished_last() -> None:
    flow = flow_of(
        task("a", 0, root_id="a"),
        task("b", 3, root_id="a", parent_id="a"),
        task("h1", 6, root_id="a", parent_id="b", group_id="g", callback_id="cb"),
        task("h2", 9, root_id="a", parent_id="b", group_id="g", callback_id="cb"),  # the slowest header
        task("h3", 7, root_id="a", parent_id="b", group_id="g", callback_id="cb"),
        task("cb", 12, root_id="a", parent_id="h2", group_id="g"),
        task("d", 15, root_id="a", parent_id="cb"),
    )
    path = critical_path(flow)
    assert path.tasks == ("a", "b", "h2", "cb", "d")
    assert path.edges == (Edge("a", "b", "child"), Edge("b", "h2", "child"), Edge("h2", "cb", "callback"),
                          Edge("cb", "d", "child"))  # fmt: skip


def test_a_group_from_outside_any_task_starts_at_its_slowest_member_and_ties_take_the_smaller_id() -> None:
    flow = flow_of(task("m1", 0, group_id="g"), task("m3", 4, group_id="g"), task("m2", 4, group_id="g"))
    assert critical_path(flow).tasks == ("m2",) and critical_path(flow).edges == ()


def test_the_path_ends_at_the_task_that_finished_last_even_when_it_failed_early_in_the_chain() -> None:
    flow = flow_of(task("a", 0, root_id="a"), task("slow", 1, root_id="a", parent_id="a"),
                   task("late", 10, root_id="a", parent_id="a", outcome=TaskFailed))  # fmt: skip
    assert critical_path(flow).tasks == ("a", "late")


def test_a_loop_in_the_linkage_ends_the_walk() -> None:
    flow = flow_of(task("x", 0, root_id="x", parent_id="y"), task("y", 3, root_id="x", parent_id="x"))
    assert critical_path(flow).tasks == ("x", "y")
