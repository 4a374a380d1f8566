"""The periodic tasks page and time travel in Chromium: the rows as the query API derives
them (missed runs, a run fired twice), and a moment picked in the form showing the counts
and the running tasks of that instant."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from ledger.bootstrap import build_view_reader
from ledger.domain.statuses import IN_FLIGHT_STATES, TaskStatus
from ledger.http.schemas import PeriodicOut
from ledger.projections.queries import TaskQueries
from ledger.settings import Settings
from tests.browser.conftest import Processes, Watched, settings_env
from tests.browser.ops_fleet import TWICE, projected_fleet


@pytest.fixture
def fleet(tmp_path: Path) -> tuple[Settings, datetime]:
    return projected_fleet(tmp_path)


def periodic(settings: Settings) -> list[PeriodicOut]:
    reader = build_view_reader(settings)
    try:
        return [PeriodicOut.from_meta(m) for m in TaskQueries(reader).periodic_tasks()]
    finally:
        reader.close()


def test_periodic_tasks_with_their_outcomes_missed_runs_and_duplicate_firings(
    fleet: tuple[Settings, datetime], processes: Processes, browse: Callable[..., Watched]
) -> None:
    settings, _ = fleet
    base = processes.serve(settings_env(settings))
    watched = browse()
    page = watched.page
    page.goto(f"{base}/ui/")
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Periodic tasks").click()
    expected = periodic(settings)
    rows = page.locator("table.periodic tbody tr")
    expect(rows).to_have_count(len(expected))
    for p in expected:
        row = page.locator(f"tr[id='{p.name}']")
        expect(row.get_by_role("rowheader")).to_have_text(p.name)
        expect(row).to_contain_text(str(p.total_run_count))
        expect(row.locator(".badge.bad", has_text="missed")).to_have_text(re.compile(r"^\d+ missed$"))
        twice = row.locator(".badge.bad", has_text="fired twice")
        if p.duplicate_firings:
            expect(twice).to_have_text(f"{p.duplicate_firings} fired twice")
        else:
            expect(twice).to_have_count(0)
        assert p.last_run_status is not None
        expect(row.locator(".status")).to_have_text(p.last_run_status.value)
    assert [p.duplicate_firings for p in expected if p.name == TWICE] == [1]
    watched.screenshot("periodic")
    page.goto(f"{base}/ui/periodic#{TWICE}")  # the overview's links
    expect(page.locator("tr:target")).to_have_attribute("data-name", TWICE)
    last = next(p for p in expected if p.name == TWICE)
    page.locator(f"tr[id='{TWICE}'] .status").click()
    expect(page).to_have_url(f"{base}/ui/tasks/{last.last_run_task_id}")


def test_time_travel_shows_the_counts_and_running_tasks_of_the_moment_picked(
    fleet: tuple[Settings, datetime], processes: Processes, browse: Callable[..., Watched]
) -> None:
    settings, start = fleet
    reader = build_view_reader(settings)
    try:  # the first whole second of the history with tasks in flight
        moment = next(m for m in (start + timedelta(seconds=s) for s in range(1, 30))
                      if any(n for s, n in reader.status_counts_as_of(m).items() if s in IN_FLIGHT_STATES))  # fmt: skip
        counts = reader.status_counts_as_of(moment)
        running = reader.in_flight_as_of(moment, limit=100)
    finally:
        reader.close()
    base = processes.serve(settings_env(settings))
    watched = browse()
    page = watched.page
    page.goto(f"{base}/ui/")
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Time travel").click()
    page.get_by_label("Moment (UTC)").fill(moment.strftime("%Y-%m-%dT%H:%M:%S"))
    page.get_by_role("button", name="Show").click()
    seconds = f"%3A{moment.second:02d}" if moment.second else "(%3A00)?"  # Chromium drops ":00" seconds
    expect(page).to_have_url(re.compile(r"\?at=" + re.escape(moment.strftime("%Y-%m-%dT%H%%3A%M")) + seconds))
    shown = page.get_by_role("region", name="Tasks by status then")
    for status in TaskStatus:
        expect(shown.locator(f"[data-status={status.value}]")).to_have_text(str(counts.get(status, 0)))
    in_flight = sum(counts.get(s, 0) for s in IN_FLIGHT_STATES)
    ids = page.locator("table.running tbody tr").evaluate_all("rows => rows.map(r => r.dataset.taskId)")
    assert len(ids) == min(in_flight, 100) and ids == [task_id for task_id, _, _ in running.tasks]
    watched.screenshot("time-travel")
    page.locator("table.running tbody tr").first.get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/ui/tasks/{ids[0]}\?as_of=" + re.escape(moment.strftime("%Y-%m-%dT%H"))))
    watched.expected_statuses.add(422)
    page.goto(f"{base}/ui/time-travel?at=yesterday")
    expect(page.get_by_role("alert")).to_contain_text("at: ")
