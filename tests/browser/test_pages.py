"""The dashboard's pages in Chromium, clicked like a person, on the embedded backend."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from ledger.bootstrap import build_event_log, build_view_reader
from ledger.settings import Settings, load_settings
from ledger.simulate import simulate
from tests.browser.conftest import Processes, Watched, settings_env
from tests.streams import append_all, project_all

TOKEN = "s3cret-token-for-the-browser"


@pytest.fixture
def embedded(tmp_path: Path) -> Settings:
    """A small simulated fleet of the last hour (40 tasks, two periodic ones), projected."""
    settings = load_settings(backend="embedded", data_dir=tmp_path, topic="events", partitions=2)
    log = build_event_log(settings)
    start = datetime.now(UTC) - timedelta(minutes=50)
    try:
        append_all(log, simulate(40, seed=7, start=start, periodic=2, periodic_runs=3))
    finally:
        log.close()
    project_all(settings)
    return settings


def total_tasks(settings: Settings) -> int:
    reader = build_view_reader(settings)
    try:
        return sum(reader.status_counts().values())
    finally:
        reader.close()


def test_the_overview_shows_counts_charts_and_failure_groups(embedded: Settings, processes: Processes,
                                                             browse: Callable[..., Watched]) -> None:  # fmt: skip
    base = processes.serve(settings_env(embedded))
    watched = browse()
    page = watched.page
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/ui/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    counts = page.get_by_role("region", name="Tasks by status")
    expect(counts).to_contain_text("DONE")
    for chart in ("throughput", "failure-rate", "runtime-p95"):
        expect(page.locator(f"figure[data-chart={chart}] canvas")).to_have_count(1)
    expect(page.locator("figure[data-chart=throughput]")).not_to_have_attribute("data-points", "0")
    page.get_by_role("link", name="last 24h").click()
    expect(page).to_have_url(re.compile(r"window=24h"))
    expect(page.locator("figure[data-chart=throughput] canvas")).to_have_count(1)
    expect(page.get_by_role("region", name="Top failure groups").get_by_role("row")).not_to_have_count(0)
    expect(page.get_by_role("region", name="Health")).to_contain_text("projector lag 0 events")
    watched.screenshot("overview")


def test_tasks_filter_page_and_open_a_task_by_clicking(embedded: Settings, processes: Processes,
                                                       browse: Callable[..., Watched]) -> None:  # fmt: skip
    base = processes.serve(settings_env(embedded))
    watched = browse()
    page = watched.page
    page.goto(f"{base}/ui/")
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Tasks", exact=True).click()
    rows = page.locator("table.tasks tbody tr[data-task-id]")
    expect(rows).to_have_count(min(50, total_tasks(embedded)))
    page.get_by_label("Status").select_option("FAILURE")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"status=FAILURE"))
    expect(page).not_to_have_url(re.compile(r"name="))  # empty fields stay out of the URL
    failed = rows.count()
    assert 0 < failed < total_tasks(embedded)
    for status in page.locator("table.tasks tbody .status").all_inner_texts():
        assert status == "FAILURE"
    first = rows.first.get_attribute("data-task-id")
    rows.first.get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/ui/tasks/{first}$"))
    page.go_back()
    expect(page).to_have_url(re.compile(r"status=FAILURE"))
    watched.screenshot("tasks")


def test_the_table_works_from_the_keyboard_and_at_a_phone_width(embedded: Settings, processes: Processes,
                                                                browse: Callable[..., Watched]) -> None:  # fmt: skip
    base = processes.serve(settings_env(embedded))
    watched = browse(width=390, height=844)
    page = watched.page
    page.goto(f"{base}/ui/tasks")
    rows = page.locator("table.tasks tbody tr[data-task-id]")
    expect(rows.first).to_be_visible()
    rows.first.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("j")
    third = rows.nth(2)
    expect(third).to_be_focused()
    page.keyboard.press("k")
    expect(rows.nth(1)).to_be_focused()
    second = rows.nth(1).get_attribute("data-task-id")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/ui/tasks/{second}$"))
    page.go_back()
    watched.assert_fits_its_width()
    watched.screenshot("tasks-phone")


def test_the_token_login_lets_the_right_token_in_and_refuses_a_wrong_one(
    embedded: Settings, processes: Processes, browse: Callable[..., Watched]
) -> None:
    base = processes.serve(settings_env(embedded, LEDGER_API_TOKEN=TOKEN))
    watched = browse()
    page = watched.page
    watched.expected_statuses.add(401)
    page.goto(f"{base}/ui/tasks?status=DONE")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    page.get_by_label("Token").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("token")
    watched.screenshot("login-refused")
    page.get_by_label("Token").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/ui/tasks\?status=DONE$"))
    expect(page.locator("table.tasks tbody tr[data-task-id]").first).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "ledger_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
