"""``ledger workflow``'s tree (pure): where each node hangs, big groups cut, malformed
linkage still shows every task once."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from ledger.domain.events import TaskFailed
from ledger.domain.workflow import build_workflow
from ledger.render import workflow_placement, workflow_tree
from tests.unit.test_workflow import task


def printed(*tasks: Any, members: int | None = 20) -> list[str]:
    flow = build_workflow(tasks)
    assert flow is not None
    out = io.StringIO()
    Console(file=out, width=200, highlight=False).print(workflow_tree(flow, members=members))
    return out.getvalue().splitlines()


def test_a_group_sent_by_a_task_hangs_under_it_and_a_callback_under_its_header() -> None:
    header = [task(m, i + 1, root_id="p", parent_id="p", group_id="g", callback_id="cb") for i, m in
              enumerate(["m1", "m2"])]  # fmt: skip
    flow = build_workflow([task("p", 0, root_id="p"), *header,
                           task("cb", 5, root_id="p", parent_id="m2", group_id="g"),
                           task("next", 8, root_id="p", parent_id="cb", group_id="g")])  # fmt: skip
    assert flow is not None
    assert workflow_placement(flow) == {"p": None, "g": "p", "m1": "g", "m2": "g", "cb": "g", "next": "cb"}
    lines = printed(*flow.tasks)
    assert lines[0].startswith("DONE · 5 tasks · 1 group")
    assert [line.lstrip("│├└─ ").split("  ")[0] for line in lines[1:]] == [
        "p", "group g · 2 tasks", "m1", "m2", "callback cb", "next"]  # fmt: skip
    assert [len(line) - len(line.lstrip("│├└─ ")) for line in lines[1:]] == [4, 8, 12, 12, 12, 16]


def test_a_big_group_shows_its_first_members_and_counts_the_rest() -> None:
    members = [task(f"m{i:02d}", i, root_id=f"m{i:02d}", group_id="g",
                    outcome=TaskFailed if i in (9, 22) else None) for i in range(25)]  # fmt: skip
    lines = printed(*members, members=20)
    assert lines[0].startswith("RUNNING at m09, m22")
    assert sum("m" in line and "attempts" in line for line in lines) == 20
    assert lines[-1].endswith("… 5 more members: 4 STARTED, 1 FAILURE (--all shows them)")
    assert sum("attempts" in line for line in printed(*members, members=None)) == 25


def test_a_loop_in_the_linkage_still_shows_each_task_once() -> None:
    lines = printed(task("a", 0, parent_id="b"), task("b", 1, parent_id="a"), task("c", 2, parent_id="b"))
    shown = [line.lstrip("│├└─ ").split("  ")[0] for line in lines[1:]]
    assert sorted(shown) == ["a", "b", "c"]
