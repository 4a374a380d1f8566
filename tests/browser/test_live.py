"""The tasks page is live: a task emitted while it is open appears in the table without a
reload, through the real event stream and a real projector; paused, the table stays as
it was and counts what arrived. On both backends (embedded; Kafka + PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import expect

from ledger.bootstrap import build_ledger
from ledger.settings import Settings
from tests.browser.conftest import Processes, Watched, settings_env, wait_until_projected
from tests.helpers import unique_name
from tests.integration.conftest import settings

__all__ = ["settings"]

LIVE_WAIT_MS = 20_000


def test_an_emitted_task_appears_in_the_open_table(settings: Settings, processes: Processes,
                                                  browse: Callable[..., Watched]) -> None:  # fmt: skip
    env = settings_env(settings)
    ledger = build_ledger(settings)
    try:
        ledger.succeeded("before-the-page", "reports.build", runtime=0.5)
        ledger.close()
        processes.start(env, "project")
        base = processes.serve(env)
        wait_until_projected(base, "before-the-page")  # the live feed brings only what comes later
        watched = browse()
        page = watched.page
        page.goto(f"{base}/ui/tasks")
        rows = page.locator("table.tasks tbody tr[data-task-id]")
        expect(rows.first).to_have_attribute("data-task-id", "before-the-page", timeout=LIVE_WAIT_MS)
        expect(page.locator("#live-state")).to_have_text("live", timeout=LIVE_WAIT_MS)

        arrived = unique_name("live")
        ledger = build_ledger(settings)
        ledger.started(arrived, "billing.charge")
        expect(rows.first).to_have_attribute("data-task-id", arrived, timeout=LIVE_WAIT_MS)
        expect(rows.first.locator(".status")).to_have_text("STARTED")
        ledger.succeeded(arrived, "billing.charge", runtime=0.2)  # a change to a row shown
        expect(rows.first.locator(".status")).to_have_text("DONE", timeout=LIVE_WAIT_MS)

        page.get_by_role("button", name="Pause live updates").click()
        expect(page.get_by_role("button", name="Resume live updates")).to_have_attribute("aria-pressed", "true")
        while_paused = unique_name("paused")
        ledger.started(while_paused, "billing.charge")
        expect(page.locator("#live-state")).to_have_text(re.compile(r"^1 new event"), timeout=LIVE_WAIT_MS)
        expect(rows.first).to_have_attribute("data-task-id", arrived)  # unchanged while paused
        page.get_by_role("button", name="Resume live updates").click()
        expect(rows.first).to_have_attribute("data-task-id", while_paused, timeout=LIVE_WAIT_MS)
        watched.screenshot(f"tasks-live-{settings.backend.value.replace('+', '-')}")
    finally:
        ledger.close()
