"""The workflow pages in Chromium: a chain + group + chord drawn with as many nodes and
edges as the reader's workflow has, its critical path marked, a click on a node opening
that task's page; a big group drawn as one node with its counts; an unknown id a 404."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from ledger.bootstrap import build_view_reader
from ledger.domain.workflow import Workflow
from ledger.settings import Settings, load_settings
from tests.browser.conftest import Processes, Watched, settings_env
from tests.browser.workflow_data import CHORD, CRITICAL, record_big_group, record_chord_workflow


@pytest.fixture
def embedded(tmp_path: Path) -> Settings:
    return load_settings(backend="embedded", data_dir=tmp_path, topic="events", partitions=2)


def workflow_of(settings: Settings, task_id: str) -> Workflow:
    reader = build_view_reader(settings)
    try:
        flow = reader.workflow(task_id)
    finally:
        reader.close()
    assert flow is not None
    return flow


def test_a_chain_group_and_chord_is_drawn_whole_and_a_node_opens_its_task(
    embedded: Settings, processes: Processes, browse: Callable[..., Watched]
) -> None:
    ids = record_chord_workflow(embedded)
    flow = workflow_of(embedded, ids["d"])
    nodes, edges = len(flow.tasks) + len(flow.groups), len(flow.edges)
    assert (nodes, edges) == (8, 11)  # 7 tasks + the group; 5 child, 3 member, 3 callback edges
    base = processes.serve(settings_env(embedded))
    watched = browse()
    page = watched.page
    page.goto(f"{base}/ui/")
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Workflows").click()
    page.get_by_label("Task id or root id").fill(ids["d"])  # any task of it leads to the whole
    page.get_by_role("button", name="Open the workflow").click()
    expect(page).to_have_url(f"{base}/ui/workflows/{ids['d']}")
    graph = page.locator("figure[data-workflow-graph] svg.workflow-graph")
    expect(graph.locator(".node")).to_have_count(nodes)
    expect(graph.locator("path.edge")).to_have_count(edges)
    expect(page.locator(".graph-counts")).to_have_text(f"{nodes} nodes, {edges} edges")
    for kind, count in (("child", 5), ("member", 3), ("callback", 3)):
        expect(graph.locator(f"path.edge-{kind}")).to_have_count(count)
    expect(page.locator("[data-workflow-state]")).to_have_text("DONE")
    expect(graph.locator(".node.critical")).to_have_count(len(CRITICAL))
    expect(graph.locator("path.edge.critical")).to_have_count(len(CRITICAL) - 1)
    path = page.get_by_role("region", name="Critical path").get_by_role("listitem")
    expect(path).to_have_count(len(CRITICAL))
    expect(path.first).to_contain_text(CHORD["a"])
    expect(graph.locator(f'[data-id="{ids["h2"]}"]')).to_contain_text("DONE")
    watched.screenshot("workflow")
    graph.get_by_role("link", name=re.compile(rf"{CHORD['cb']} {ids['cb']}")).click()
    expect(page).to_have_url(f"{base}/ui/tasks/{ids['cb']}")
    expect(page.get_by_role("heading", name=f"Task {ids['cb']}")).to_be_visible()


def test_a_big_group_is_drawn_as_one_node_with_its_counts(
    embedded: Settings, processes: Processes, browse: Callable[..., Watched]
) -> None:
    callback = record_big_group(embedded, members=200, failed=7)
    flow = workflow_of(embedded, callback)
    assert (len(flow.tasks), list(flow.groups)) == (202, ["big-g"])
    base = processes.serve(settings_env(embedded))
    watched = browse()
    page = watched.page
    page.goto(f"{base}/ui/workflows/{callback}")
    graph = page.locator("svg.workflow-graph")
    expect(graph.locator(".node")).to_have_count(3)  # the sender, the group, the callback
    expect(graph.locator("path.edge")).to_have_count(2)  # sender → group, group → callback
    group = graph.locator(".node-group")
    expect(group).to_contain_text("group big-g: 200 tasks")
    expect(group).to_contain_text("193 DONE, 7 FAILURE")
    expect(page.locator(".graph-counts")).to_have_text("3 nodes, 2 edges")
    expect(page.locator("figure[data-workflow-graph] figcaption")).to_contain_text("202 tasks, 1 group, 1 collapsed")
    expect(page.locator("[data-workflow-state]")).to_have_text("FAILED")
    watched.screenshot("workflow-big-group")
    watched.expected_statuses.add(404)
    page.goto(f"{base}/ui/workflows/no-such-task")
    expect(page.get_by_role("main")).to_contain_text("'no-such-task' is unknown to the ledger")
