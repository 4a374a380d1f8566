"""Every page, reached by clicking through the dashboard as a person would, with no console
error and no failed request, on both backends (embedded; Kafka + PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect

from ledger.bootstrap import build_event_log
from ledger.settings import Settings
from ledger.simulate import simulate
from tests.browser.conftest import Processes, Watched, settings_env
from tests.integration.conftest import settings
from tests.streams import append_all, project_all

__all__ = ["settings"]


def test_every_page_by_clicking_through(settings: Settings, processes: Processes,
                                        browse: Callable[..., Watched]) -> None:  # fmt: skip
    log = build_event_log(settings)
    try:
        append_all(log, simulate(30, seed=11, start=datetime.now(UTC) - timedelta(minutes=40), periodic=1))
    finally:
        log.close()
    project_all(settings)
    base = processes.serve(settings_env(settings))
    page = browse().page
    nav = page.get_by_role("navigation", name="Pages")
    page.goto(base)
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    expect(page.get_by_role("region", name="Tasks by status")).to_be_visible()  # the live part loaded
    for link, heading in (("Tasks", "Tasks"), ("Failures", "Failures"), ("Workers", "Workers"),
                          ("Periodic tasks", "Periodic tasks"), ("Time travel", "Time travel"),
                          ("Workflows", "Workflows")):  # fmt: skip
        nav.get_by_role("link", name=link, exact=True).click()
        expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
    nav.get_by_role("link", name="Tasks", exact=True).click()
    page.locator("table.tasks tbody tr[data-task-id] a").first.click()
    expect(page).to_have_url(re.compile(r"/ui/tasks/[^/]+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Task")
    nav.get_by_role("link", name="Failures", exact=True).click()
    page.locator("table.failures tbody tr a").first.click()
    expect(page).to_have_url(re.compile(r"/ui/failures/[0-9a-f]{16}"))
