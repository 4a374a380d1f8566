"""The tasks table sorted by a click on a column header, paged in that order, on the
embedded backend with more tasks than a page holds."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from ledger.bootstrap import build_ledger
from ledger.settings import Settings, load_settings
from tests.browser.conftest import Processes, Watched, settings_env
from tests.streams import project_all

TASKS = 73
"""More than a page (50): the second page matters."""


@pytest.fixture
def shuffled(tmp_path: Path) -> Settings:
    """Tasks first seen a minute apart and finished in another order (37 is prime to 73), so
    the Changed order is neither the First seen order nor its reverse."""
    settings = load_settings(backend="embedded", data_dir=tmp_path, topic="events", partitions=2)
    sdk = build_ledger(settings)
    start = datetime.now(UTC) - timedelta(hours=3)
    try:
        for i in range(TASKS):
            sdk.pending(f"job-{i:02d}", "report.build", occurred_at=start + timedelta(minutes=i))
        for i in range(TASKS):
            done = start + timedelta(hours=2, seconds=(i * 37) % TASKS)
            sdk.succeeded(f"job-{i:02d}", "report.build", occurred_at=done, runtime=0.1)
    finally:
        sdk.close()
    project_all(settings)
    return settings


def changed_cells(page: Page) -> list[str]:
    return page.locator("table.tasks tbody tr[data-task-id] td:last-child").all_inner_texts()


def task_ids(page: Page) -> list[str]:
    return [row.get_attribute("data-task-id") or "" for row in page.locator("table.tasks tbody tr[data-task-id]").all()]


def test_a_header_click_sorts_by_changed_both_ways_and_paging_keeps_the_order(
    shuffled: Settings, processes: Processes, browse: Callable[..., Watched]
) -> None:
    base = processes.serve(settings_env(shuffled))
    watched = browse()
    page = watched.page
    page.goto(f"{base}/ui/tasks")
    rows = page.locator("table.tasks tbody tr[data-task-id]")
    expect(rows).to_have_count(50)
    first_seen = page.get_by_role("columnheader", name="First seen")
    expect(first_seen).to_have_attribute("aria-sort", "descending")  # the default order says so
    assert task_ids(page)[:3] == ["job-72", "job-71", "job-70"]

    changed = page.get_by_role("columnheader", name=re.compile("^Changed"))
    changed.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"sort=-changed"))
    expect(changed).to_have_attribute("aria-sort", "descending")
    expect(changed).to_contain_text("▼")
    expect(first_seen).not_to_have_attribute("aria-sort", re.compile("."))
    expect(page.locator("#rows")).to_have_attribute("data-live", "yes")  # newest first: live refresh
    newest = changed_cells(page)
    assert len(newest) == 50 and newest == sorted(newest, reverse=True)

    changed.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"sort=changed"))
    expect(changed).to_have_attribute("aria-sort", "ascending")
    expect(changed).to_contain_text("▲")
    expect(page.locator("#rows")).to_have_attribute("data-live", "no")  # events are counted, as when paged
    oldest = changed_cells(page)
    assert oldest == sorted(oldest) and oldest[0] < newest[-1]
    first_page = task_ids(page)

    page.get_by_role("link", name="Newer →").click()
    expect(page).to_have_url(re.compile(r"sort=changed.*cursor=|cursor=.*sort=changed"))
    expect(rows).to_have_count(TASKS - 50)
    second = changed_cells(page)
    assert second == sorted(second) and second[0] > oldest[-1], "the second page continues the order"
    second_page = task_ids(page)
    assert not set(first_page) & set(second_page) and len(set(first_page + second_page)) == TASKS
    watched.screenshot("tasks-sorted")

    shared = browse().page  # the URL reproduces the page
    shared.goto(page.url)
    expect(shared.locator("table.tasks tbody tr[data-task-id]")).to_have_count(TASKS - 50)
    assert task_ids(shared) == second_page
    expect(shared.get_by_role("columnheader", name=re.compile("^Changed"))).to_have_attribute("aria-sort", "ascending")
