"""The task page in Chromium: every event a timeline row (the late one marked), a time bar
per attempt, payloads copied to the clipboard, the task as of an earlier moment (picked
from the timeline and typed), its workflow drawn around it; at 1280 px and at 390 px."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from ledger.bootstrap import build_view_reader
from ledger.projections.store import HistoryRow
from ledger.settings import Settings, load_settings
from tests.browser.conftest import Processes, Watched, settings_env
from tests.browser.workflow_data import RESULT, record_chord_workflow


@pytest.fixture
def embedded(tmp_path: Path) -> Settings:
    return load_settings(backend="embedded", data_dir=tmp_path, topic="events", partitions=2)


def events_of(settings: Settings, task_id: str) -> list[HistoryRow]:
    reader = build_view_reader(settings)
    try:
        return reader.task_events(task_id)
    finally:
        reader.close()


def test_the_task_page_shows_the_timeline_copies_payloads_and_goes_back_in_time(
    embedded: Settings, processes: Processes, browse: Callable[..., Watched]
) -> None:
    ids = record_chord_workflow(embedded)
    task_id, events = ids["h3"], events_of(embedded, ids["h3"])
    assert len(events) == 8  # two attempts and a late RECEIVED
    base = processes.serve(settings_env(embedded))
    watched = browse()
    page = watched.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page.goto(f"{base}/ui/tasks/{task_id}")
    expect(page.locator("[data-shown-status]")).to_have_text("DONE")
    rows = page.locator("table.timeline tbody tr")
    expect(rows).to_have_count(len(events))
    expect(rows.filter(has_text="late")).to_have_count(1)
    expect(rows.nth(4)).to_contain_text("celery@worker-2")
    bars = page.get_by_role("region", name="Attempts").get_by_role("listitem")
    expect(bars).to_have_count(2)
    expect(bars.first).to_contain_text("attempt 0: queue wait 1.0 s · start delay 1.0 s · runtime 1.0 s → RETRY")
    expect(bars.nth(1)).to_contain_text("attempt 1: queue wait 1.0 s · start delay 1.0 s · runtime 1.0 s → DONE")
    pretty = json.dumps({"shard": 3, "dry_run": False}, indent=2, sort_keys=True)  # as stored: keys sorted
    expect(page.locator("pre#block-kwargs")).to_have_text(pretty)

    page.get_by_role("button", name="Copy result").click()
    expect(page.locator("details", has_text="Result").get_by_role("status")).to_have_text("copied")
    assert json.loads(page.evaluate("navigator.clipboard.readText()")) == RESULT
    page.locator("details.payload summary").get_by_text("Args", exact=True).click()  # collapses
    expect(page.locator("pre#block-args")).to_be_hidden()

    graph = page.get_by_role("region", name="Workflow").locator("svg.workflow-graph")
    expect(graph.locator(".node")).to_have_count(8)
    expect(graph.locator("path.edge")).to_have_count(11)
    expect(graph.locator(f'.node.current[data-id="{task_id}"]')).to_have_count(1)
    watched.screenshot("task")

    rows.first.get_by_role("link").click()  # as of the first event: PENDING
    expect(page).to_have_url(re.compile(r"\?as_of="))
    expect(page.locator("[data-shown-status]")).to_have_text("PENDING")
    expect(page.get_by_role("region", name="As of").get_by_role("status")).to_contain_text("PENDING then")
    expect(rows.filter(has_text="after as-of")).to_have_count(len(events) - 1)
    between = events[3].occurred_at + timedelta(milliseconds=500)  # after attempt 0's RETRY
    page.get_by_label("Show the task as of").fill(between.isoformat())
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(rf"as_of={re.escape(quote(between.isoformat(), safe=''))}"))
    expect(page.locator("[data-shown-status]")).to_have_text("RETRY")
    page.get_by_role("link", name="Back to now").click()
    expect(page.locator("[data-shown-status]")).to_have_text("DONE")

    watched.expected_statuses.add(422)
    page.goto(f"{base}/ui/tasks/{task_id}?as_of=yesterday")
    expect(page.get_by_role("main")).to_contain_text("as_of")


def test_the_task_page_at_a_phone_width(embedded: Settings, processes: Processes,
                                        browse: Callable[..., Watched]) -> None:  # fmt: skip
    ids = record_chord_workflow(embedded)
    base = processes.serve(settings_env(embedded))
    watched = browse(width=390, height=844)
    page = watched.page
    page.goto(f"{base}/ui/tasks/{ids['h3']}")
    expect(page.locator("table.timeline tbody tr")).to_have_count(8)
    expect(page.locator("svg.workflow-graph .node")).to_have_count(8)
    watched.assert_fits_its_width()
    watched.screenshot("task-phone")
