"""The failures pages in Chromium: the groups as ``FailureQueries`` reads them, a window and
a name filter in the URL, a group's page, and resolving and reopening it by clicking."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from ledger.bootstrap import build_view_reader
from ledger.projections.failures import FailureGroup, FailureQueries
from ledger.settings import Settings
from tests.browser.conftest import Processes, Watched, settings_env
from tests.browser.ops_fleet import projected_fleet
from tests.streams import project_all


@pytest.fixture
def fleet(tmp_path: Path) -> Settings:
    return projected_fleet(tmp_path)[0]


def groups(settings: Settings, window: timedelta, name: str | None = None) -> list[FailureGroup]:
    reader = build_view_reader(settings)
    try:
        return FailureQueries(reader).groups(since=datetime.now(UTC) - window, name=name, limit=100)
    finally:
        reader.close()


def shown_counts(page: Page) -> dict[str, int]:
    rows = page.locator("table.failures tbody tr")
    return {str(row.get_attribute("data-fingerprint")): int(row.locator("td.count").inner_text()) for row in rows.all()}


def test_failure_groups_their_page_and_resolving_and_reopening_one_by_clicking(fleet: Settings, processes: Processes,
                                                                 browse: Callable[..., Watched]) -> None:  # fmt: skip
    base = processes.serve(settings_env(fleet))
    watched = browse()
    page = watched.page
    page.goto(f"{base}/ui/")
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Failures").click()
    expect(page.get_by_role("heading", name="Failures")).to_be_visible()
    expected = groups(fleet, timedelta(days=1))
    assert len(expected) >= 2
    expect(page.locator("table.failures tbody tr")).to_have_count(len(expected))
    assert shown_counts(page) == {g.fingerprint: g.count for g in expected}
    expect(page.locator("svg.sparkline")).to_have_count(len(expected))
    expect(page.locator("table.failures .status-open").first).to_have_text("open")
    watched.screenshot("failures")

    page.get_by_role("link", name="last 1h").click()
    expect(page).to_have_url(re.compile(r"window=1h"))
    assert shown_counts(page) == {g.fingerprint: g.count for g in groups(fleet, timedelta(hours=1))}
    name = str(expected[-1].task_name)
    page.get_by_label("Task name").fill(name)
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(rf"window=1h&name={re.escape(name)}$"))
    assert shown_counts(page) == {g.fingerprint: g.count for g in groups(fleet, timedelta(hours=1), name)}

    target = groups(fleet, timedelta(hours=1), name)[0]
    page.locator(f"tr[data-fingerprint='{target.fingerprint}']").get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(rf"/ui/failures/{target.fingerprint}\?window=1h$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(target.exc_type)
    expect(page.get_by_role("region", name="Examples").get_by_role("link")).to_have_count(len(target.examples))
    page.get_by_label("By", exact=True).fill("ops on call")
    page.get_by_role("button", name="Resolve").click()
    expect(page.get_by_role("status")).to_have_text(
        "Resolution recorded; the view updates once the projector has applied it.")
    project_all(fleet)
    page.reload()
    expect(page.locator(".heading .status")).to_have_text("resolved")
    expect(page.get_by_role("button", name="Resolve")).to_have_count(0)
    page.get_by_role("link", name="← Failures").click()
    expect(page.locator(f"tr[data-fingerprint='{target.fingerprint}'] .status")).to_have_text("resolved")
    assert groups(fleet, timedelta(days=1), name)[0].resolved_by == "ops on call"

    page.locator(f"tr[data-fingerprint='{target.fingerprint}']").get_by_role("link").first.click()
    reopen = page.get_by_role("region", name="Reopen")
    reopen.get_by_label("By", exact=True).fill("dev on call")
    reopen.get_by_label("Note").fill("still failing on 1.4.2")
    reopen.get_by_role("button", name="Reopen").click()
    expect(page.get_by_role("status")).to_have_text(
        "Reopen recorded; the view updates once the projector has applied it.")
    project_all(fleet)
    page.reload()
    expect(page.locator(".heading .status")).to_have_text("open")
    expect(page.get_by_role("button", name="Resolve")).to_be_visible()
    expect(page.locator("dl.fields")).to_contain_text("dev on call")
    reopened = groups(fleet, timedelta(days=1), name)[0]
    assert (reopened.status, reopened.reopened_by, reopened.resolved_by) == ("open", "dev on call", "ops on call")


def test_the_failures_page_at_a_phone_width_and_its_bad_input(fleet: Settings, processes: Processes,
                                                              browse: Callable[..., Watched]) -> None:  # fmt: skip
    base = processes.serve(settings_env(fleet))
    watched = browse(width=390, height=844)
    page = watched.page
    page.goto(f"{base}/ui/failures")
    rows = page.locator("table.failures tbody tr")
    expect(rows).to_have_count(len(groups(fleet, timedelta(days=1))))
    expect(rows.first.locator("td.count")).to_be_visible()
    expect(rows.first.locator("svg.sparkline")).to_be_visible()
    expect(rows.first.locator(".status")).to_be_in_viewport()
    watched.assert_fits_its_width()
    watched.screenshot("failures-phone")
    watched.expected_statuses.update({404, 422})
    page.goto(f"{base}/ui/failures?window=2h")
    expect(page.get_by_role("alert")).to_contain_text("window:")
    page.goto(f"{base}/ui/failures/0123456789abcdef")
    expect(page.get_by_role("alert")).to_contain_text("has no failure")
