"""One command shows the dashboard: ``ledger demo --serve`` prints its URL over the demo's
views, a browser finds the tasks there, and Ctrl-C stops it cleanly, the demo's files gone."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import expect

from tests.browser.conftest import DEADLINE_S, ROOT, Watched, free_port, wait_for_health


def test_demo_serve_prints_the_dashboards_url_and_serves_the_demo(tmp_path: Path,
                                                                  browse: Callable[..., Watched]) -> None:  # fmt: skip
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(TMPDIR=str(tmp_path), PYTHONPATH=str(ROOT), LEDGER_DATA_DIR=str(tmp_path / "never-touched"))
    demo = subprocess.Popen([sys.executable, "-m", "ledger", "demo", "--tasks", "120", "--serve", "--port", str(port)],
                            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        url, printed, deadline = None, [], time.monotonic() + DEADLINE_S * 3
        assert demo.stdout is not None
        while url is None:
            assert time.monotonic() < deadline and demo.poll() is None, "".join(printed)
            line = demo.stdout.readline()
            printed.append(line)
            found = re.search(r"dashboard over the demo's views: (http://\S+)", line)
            url = found.group(1) if found else None
        assert url == f"http://127.0.0.1:{port}/ui/"
        wait_for_health(url.removesuffix("/ui/"))  # it listens a moment after printing
        page = browse().page
        page.goto(url.replace("/ui/", "/ui/tasks"))
        expect(page.locator("table.tasks tbody tr[data-task-id]")).to_have_count(50)
    finally:
        demo.send_signal(signal.SIGINT)
        assert demo.wait(20) == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("ledger-demo-")], "the demo's files are left"
