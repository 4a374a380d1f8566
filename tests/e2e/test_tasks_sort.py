"""``ledger tasks --sort``: the listing's orders from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ledger.bootstrap import build_ledger
from ledger.settings import load_settings
from tests.cli import ledger


def test_tasks_sort_orders_the_listing_and_a_bad_order_is_one_line(tmp_path: Path) -> None:
    env = {"LEDGER_DATA_DIR": str(tmp_path)}
    sdk = build_ledger(load_settings(backend="embedded", data_dir=tmp_path))
    start = datetime.now(UTC) - timedelta(hours=1)
    for i, task_id in enumerate(("first", "second", "third")):  # seen in this order, finished in reverse
        sdk.pending(task_id, "app.add", occurred_at=start + timedelta(minutes=i))
    for i, task_id in enumerate(("third", "second", "first")):
        sdk.succeeded(task_id, "app.add", result=i, occurred_at=start + timedelta(minutes=10 + i))
    sdk.close()
    assert ledger("project", "--until-caught-up", env=env).returncode == 0
    orders = {"-first_seen": ["third", "second", "first"], "first_seen": ["first", "second", "third"],
              "-changed": ["first", "second", "third"], "changed": ["third", "second", "first"]}  # fmt: skip
    for sort, expected in orders.items():
        done = ledger("tasks", "--sort", sort, "--json", env=env)
        assert done.returncode == 0, done.stderr
        assert [t["task_id"] for t in json.loads(done.stdout)] == expected, sort
    bad = ledger("tasks", "--sort", "newest", env=env)
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0, bad.stderr
    assert "--sort: expected one of -first_seen, first_seen, -changed, changed" in bad.stderr
