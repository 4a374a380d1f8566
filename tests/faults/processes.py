"""Running ``ledger`` processes for fault tests, and checking the views after them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from ledger.bootstrap import build_rebuild, build_view_writer
from ledger.projections.schema import PRIMARY_KEYS
from ledger.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    for name, value in settings.model_dump(mode="json", exclude_none=True).items():
        env[f"LEDGER_{name.upper()}"] = str(value)
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def start(settings: Settings, *args: str, script: str | None = None, **extra: str) -> subprocess.Popen[str]:
    """``ledger <args>`` (or a Python ``script``) as a child process with these settings."""
    command = [sys.executable, "-c", script, *args] if script else [sys.executable, "-m", "ledger", *args]
    return subprocess.Popen(command, env=environment(settings, **extra), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def kill(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def catch_up(settings: Settings) -> None:
    done = subprocess.run([sys.executable, "-m", "ledger", "project", "--until-caught-up"],
                          env=environment(settings), capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def assert_equal_to_a_clean_rebuild(settings: Settings) -> None:
    """Invariant 1 after the faults: a replay from offset 0 gives exactly the same rows."""
    report = build_rebuild(settings).run(verify=True, dry_run=True)
    assert report.diff is not None and report.diff.clean, report.diff and report.diff.report()


def history_ids(settings: Settings) -> list[str]:
    """Every event id in the history tables (a list: duplicates would show)."""
    store = build_view_writer(settings)
    ids: list[str] = []
    for table in ("task_event", "periodic_task_event"):
        assert table in PRIMARY_KEYS
        ids += [str(row[0]) for row in store.table_rows(table)[1]]
    store.close()
    return ids
