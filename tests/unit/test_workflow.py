"""Workflow shapes from task states (pure): edges of a chain, a group and a chord, and the
overall state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.domain.events import TaskEvent, TaskFailed, TaskPending, TaskStarted, TaskSucceeded
from ledger.domain.fold import TaskState, fold
from ledger.domain.workflow import Edge, build_workflow

T0 = datetime(2026, 1, 2, tzinfo=UTC)


def task(task_id: str, at: int, outcome: type[TaskEvent] | None = TaskSucceeded, **links: Any) -> TaskState:
    events: list[TaskEvent] = [TaskPending(task_id=task_id, occurred_at=T0 + timedelta(seconds=at), **links),
                               TaskStarted(task_id=task_id, occurred_at=T0 + timedelta(seconds=at + 1))]  # fmt: skip
    if outcome is TaskFailed:
        events.append(TaskFailed(task_id=task_id, exc_type="E", occurred_at=T0 + timedelta(seconds=at + 2)))
    elif outcome is not None:
        events.append(outcome(task_id=task_id, occurred_at=T0 + timedelta(seconds=at + 2)))
    state = fold([(event, None) for event in events])
    assert state is not None
    return state


def test_a_chain_is_a_line_of_child_edges_and_done_when_all_are() -> None:
    first = task("a", 0, root_id="a")
    flow = build_workflow([task("c", 6, root_id="a", parent_id="b"), first, task("b", 3, root_id="a", parent_id="a")])
    assert flow is not None
    assert [t.task_id for t in flow.tasks] == ["a", "b", "c"] and flow.roots == ("a",)
    assert flow.edges == (Edge("a", "b", "child"), Edge("b", "c", "child"))
    assert (flow.state, flow.failed_at, flow.started_at, flow.duration) == ("done", (), T0, 8.0)


def test_a_chord_header_is_a_group_whose_members_lead_to_the_callback() -> None:
    header = [task(m, i, root_id=m, group_id="g", callback_id="cb") for i, m in enumerate(["h1", "h2"])]
    callback = task("cb", 5, root_id="h2", parent_id="h2", group_id="g")  # as Celery sends it
    flow = build_workflow([*header, callback])
    assert flow is not None
    assert flow.groups == {"g": ("h1", "h2")}  # the callback is not a member
    assert set(flow.edges) == {Edge("g", "h1", "member"), Edge("g", "h2", "member"),
                               Edge("h1", "cb", "callback"), Edge("h2", "cb", "callback")}  # fmt: skip
    assert flow.roots == ("h1", "h2") and flow.state == "done"


def test_a_failed_header_task_fails_the_workflow_and_a_running_one_keeps_it_running() -> None:
    failed = [task("h1", 0, group_id="g", callback_id="cb", outcome=TaskFailed), task("h2", 1, group_id="g")]
    flow = build_workflow(failed)
    assert flow is not None and (flow.state, flow.failed_at) == ("failed", ("h1",))
    assert flow.finished_at == T0 + timedelta(seconds=3) and flow.duration == 3.0
    running = build_workflow([*failed, task("h3", 2, group_id="g", outcome=None)])
    assert running is not None and (running.state, running.failed_at, running.duration) == ("running", ("h1",), None)
    assert build_workflow([]) is None


def test_a_chord_body_chained_after_the_callback_is_not_a_member_of_the_header() -> None:
    header = [task(m, i, root_id=m, group_id="g", callback_id="cb") for i, m in enumerate(["h1", "h2"])]
    body = [task("cb", 5, root_id="h2", parent_id="h2", group_id="g"),
            task("after", 8, root_id="h2", parent_id="cb", group_id="g")]  # Celery tags the body with the group
    flow = build_workflow([*header, *body])
    assert flow is not None and flow.groups == {"g": ("h1", "h2")}
    assert [e for e in flow.edges if e.kind == "child"] == [Edge("cb", "after", "child")]
