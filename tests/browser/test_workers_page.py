"""The workers page in Chromium: reached from the nav, each worker as ``WorkerQueries``
reads it (status as text and colour, last heartbeat, load, processed and active counts,
software), a worker whose heartbeats stopped shown offline, and a click to the tasks it
ran. The data is Celery's own event stream, imported by ``ledger import celery-events`` and
projected by the real projector."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from ledger.bootstrap import build_view_reader
from ledger.projections.workers import Worker, WorkerQueries
from ledger.settings import Settings, load_settings
from tests.browser.conftest import Processes, Watched, settings_env
from tests.cli import ledger
from tests.streams import project_all
from tests.worker_fleet import BUSY, KILLED, STOPPED, captured


@pytest.fixture
def fleet(tmp_path: Path) -> Settings:
    settings = load_settings(backend="embedded", data_dir=tmp_path / "ledger", topic="events", partitions=2)
    source = captured(tmp_path / "events.jsonl", datetime.now(UTC))
    env = {"LEDGER_DATA_DIR": str(settings.data_dir), "LEDGER_TOPIC": "events", "LEDGER_PARTITIONS": "2"}
    done = ledger("import", "celery-events", str(source), env=env)
    assert done.returncode == 0, done.stderr
    project_all(settings)
    return settings


def workers(settings: Settings) -> dict[str, Worker]:
    reader = build_view_reader(settings)
    try:
        return {w.hostname: w for w in WorkerQueries(reader).workers()}
    finally:
        reader.close()


def shown(page: Page) -> dict[str, tuple[str, str, str, str]]:
    """Per worker row: (status, processed, active, load average) as the page shows them."""
    rows = page.locator("table.workers tbody tr")
    return {
        str(row.get_attribute("data-hostname")): (
            row.locator(".status").inner_text(), row.locator("td.processed").inner_text(),
            row.locator("td.active").inner_text(), row.locator("td.loadavg").inner_text(),
        )
        for row in rows.all()
    }  # fmt: skip


def test_the_workers_page_from_the_nav_shows_a_silent_worker_offline(
    fleet: Settings, processes: Processes, browse: Callable[..., Watched]
) -> None:
    base = processes.serve(settings_env(fleet))
    watched = browse()
    page = watched.page
    page.goto(f"{base}/ui/")
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Workers").click()
    expect(page.get_by_role("heading", name="Workers", level=1)).to_be_visible()
    expected = workers(fleet)
    assert [expected[h].status for h in (BUSY, KILLED, STOPPED)] == ["online", "offline", "offline"]
    expect(page.locator("table.workers tbody tr")).to_have_count(len(expected))
    assert shown(page) == {
        h: (w.status, str(w.processed), str(w.active), " ".join(f"{n:.2f}" for n in w.loadavg or ()))
        for h, w in expected.items()
    }
    expect(page.locator("#worker-summary")).to_contain_text("1 of 3 online")
    killed = page.locator(f"tr[data-hostname='{KILLED}']")
    expect(killed).to_contain_text("3 heartbeats missed by")
    expect(page.locator(f"tr[data-hostname='{STOPPED}']")).to_contain_text("(stopped")
    expect(page.locator(f"tr[data-hostname='{BUSY}']")).to_contain_text("py-celery 5.7.0 (Linux)")
    online = page.locator(f"tr[data-hostname='{BUSY}'] .status").evaluate("e => getComputedStyle(e).color")
    offline = killed.locator(".status").evaluate("e => getComputedStyle(e).color")
    assert online != offline  # the status is colour as well as text
    watched.screenshot("workers")

    killed.get_by_role("link", name=f"Tasks of {KILLED}").click()
    expect(page).to_have_url(re.compile(r"/ui/tasks\?worker=celery%40killed$"))
    expect(page.locator("table.tasks tbody tr[data-task-id]")).to_have_count(5)
    expect(page.locator("table.tasks tbody tr[data-task-id='killed-04'] .status")).to_have_text("FAILURE")


def test_the_workers_page_at_a_phone_width(fleet: Settings, processes: Processes,
                                           browse: Callable[..., Watched]) -> None:  # fmt: skip
    base = processes.serve(settings_env(fleet))
    watched = browse(width=390, height=844)
    page = watched.page
    page.goto(f"{base}/ui/workers")
    rows = page.locator("table.workers tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first.locator(".status")).to_be_visible()
    watched.assert_fits_its_width()
    watched.screenshot("workers-phone")


def test_no_worker_yet_says_where_workers_come_from(tmp_path: Path, processes: Processes,
                                                    browse: Callable[..., Watched]) -> None:  # fmt: skip
    empty = load_settings(backend="embedded", data_dir=tmp_path, topic="events", partitions=2)
    project_all(empty)
    base = processes.serve(settings_env(empty))
    page = browse().page
    page.goto(f"{base}/ui/workers")
    expect(page.get_by_text("No worker is known to the ledger yet")).to_be_visible()
