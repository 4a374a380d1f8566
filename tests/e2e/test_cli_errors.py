"""The CLI's error rule, as a new user meets it: one line on stderr naming the option (or
saying what to run), exit code 1, never a traceback or a usage box; and a command that only
reads creates nothing."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from ledger.bootstrap import build_event_log, build_ledger, build_view_writer
from ledger.settings import load_settings
from tests.cli import ledger

READERS = [
    ["stats"], ["stats", "--as-of", "1h"], ["tasks"], ["task", "t-1"], ["task", "t-1", "--as-of", "1h"],
    ["stuck"], ["periodic"], ["lag"], ["history", "t-1"], ["workers"], ["workers", "show", "celery@w1"],
]  # fmt: skip


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    error = done.stderr.strip()
    assert error.count("\n") == 0 and "Traceback" not in error, error
    return error


@pytest.mark.parametrize("args", READERS, ids=" ".join)
def test_a_reader_on_a_fresh_data_dir_says_what_to_run_and_creates_nothing(tmp_path: Path, args: list[str]) -> None:
    data_dir = tmp_path / "nonexistent" / "deep" / "dir"
    error = one_line_error(ledger(*args, env={"LEDGER_DATA_DIR": str(data_dir)}))
    assert f"no ledger views in {data_dir}" in error and "`ledger migrate`" in error
    assert not (tmp_path / "nonexistent").exists()


@pytest.mark.parametrize("args", READERS, ids=" ".join)
def test_a_reader_before_the_first_projection_says_what_to_run(tmp_path: Path, args: list[str]) -> None:
    with build_ledger(load_settings(backend="embedded", data_dir=tmp_path)) as sdk:  # a worker emitted
        sdk.succeeded("t-1", "app.x", result=1)
    before = sorted(path.name for path in tmp_path.iterdir())
    error = one_line_error(ledger(*args, env={"LEDGER_DATA_DIR": str(tmp_path)}))
    assert "no ledger views in" in error and "`ledger project`" in error
    assert sorted(path.name for path in tmp_path.iterdir()) == before


@pytest.mark.parametrize("args", [["replay"], ["dlq", "list"], ["tail"]], ids=" ".join)
def test_a_reader_of_the_log_on_a_fresh_data_dir_names_it_and_creates_nothing(tmp_path: Path, args: list[str]) -> None:
    data_dir = tmp_path / "nonexistent" / "deep" / "dir"
    error = one_line_error(ledger(*args, env={"LEDGER_DATA_DIR": str(data_dir)}))
    assert f"no ledger event log in {data_dir}" in error
    assert not (tmp_path / "nonexistent").exists()


def test_migrate_creates_the_views_and_the_readers_then_answer(tmp_path: Path) -> None:
    env = {"LEDGER_DATA_DIR": str(tmp_path / "new")}
    assert ledger("migrate", env=env).stdout.startswith("applied: 0001")
    assert ledger("migrate", env=env).stdout.strip() == "schema up to date"
    assert ledger("tasks", env=env).returncode == 0 and ledger("stats", env=env).returncode == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["tasks", "--since", "99999999999h"], "--since"),
        (["stuck", "--older-than", "1000000000d"], "--older-than"),
        (["stats", "--as-of", "99999999h"], "--as-of"),
        (["task", "t-1", "--as-of", "0001-01-01T00:00:00+01:00"], "--as-of"),
        (["schema", "/nonexistent/dir/x.json"], "PATH"),
        (["schema", ""], "PATH"),
        (["tasks", "--since", ""], "--since"),
        (["replay", "--since", ""], "--since"),
        (["tasks", "--limit", "0"], "--limit"),
        (["tasks", "--limit", "1001"], "--limit"),
        (["tasks", "--limit", "many"], "--limit"),
        (["serve", "--port", "0"], "--port"),
        (["demo", "--tasks", "0"], "--tasks"),
        (["tasks", "--no-such-option"], "--no-such-option"),
        (["history"], "task_id"),
        (["task", "   "], "TASK_ID: must not be blank"),  # the SDK's and HTTP's rule for ids
        (["history", "x" * 256], "TASK_ID: String should have at most 255 characters"),
        (["tasks", "--worker", ""], "--worker: String should have at least 1 character"),
    ],
)
def test_bad_input_is_one_line_naming_the_option(tmp_path: Path, args: list[str], needle: str) -> None:
    config = load_settings(backend="embedded", data_dir=tmp_path)
    with build_view_writer(config) as views:
        views.migrate()  # the views exist: what fails is the input
    build_event_log(config).close()
    error = one_line_error(ledger(*args, env={"LEDGER_DATA_DIR": str(tmp_path)}, cwd=tmp_path))
    assert needle in error


def test_serve_on_a_port_in_use_is_one_line_naming_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        error = one_line_error(ledger("serve", "--port", str(port), env={"LEDGER_DATA_DIR": str(tmp_path)}))
    assert f"127.0.0.1:{port}" in error and "in use" in error
