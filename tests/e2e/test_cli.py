"""The ``ledger`` command as a user runs it: its output and exit code (``tests.cli``), and
``serve`` as a real process."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ledger.bootstrap import build_ledger
from ledger.domain.statuses import TaskStatus
from ledger.settings import load_settings
from tests.cli import ROOT, ledger


def test_the_demo_runs_on_the_embedded_default_and_prints_the_summary(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = ledger("demo", "--tasks", "400", cwd=tmp_path, env=user_dirs(tmp_path) | {"TMPDIR": str(scratch)})
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for heading in ("Tasks by status", "Slowest tasks", "Latest failures", "Timeline of", "Periodic tasks"):
        assert heading in out
    assert "projected" in out and "0 dead letters" in out
    assert "reports.nightly" in out and "total runs" in out
    assert "embedded ledger in " + str(scratch) in out  # it says where it runs
    assert not list(scratch.iterdir()) and not (tmp_path / "xdg").exists()  # and cleans up after itself


def test_the_demo_never_touches_the_configured_ledger_and_keep_says_where_it_is(tmp_path: Path) -> None:
    real, scratch = tmp_path / "real", tmp_path / "tmp"
    scratch.mkdir()
    done = ledger("demo", "--tasks", "150", "--keep", env={"LEDGER_DATA_DIR": str(real), "TMPDIR": str(scratch)})
    assert done.returncode == 0, done.stderr
    assert not real.exists()
    (kept,) = scratch.iterdir()
    assert f"LEDGER_DATA_DIR={kept} ledger tasks" in " ".join(done.stdout.split())
    counts = json.loads(ledger("stats", "--json", env={"LEDGER_DATA_DIR": str(kept)}).stdout)
    assert counts["DONE"] > 100
    rebuilt = ledger("rebuild", "--verify", env={"LEDGER_DATA_DIR": str(kept)})  # the log is found as well
    assert rebuilt.returncode == 0 and "identical" in rebuilt.stdout, rebuilt.stdout


def user_dirs(home: Path) -> dict[str, str]:
    """Per-user directories (XDG) inside ``home``, so the default data dir is a test's own."""
    return {"XDG_DATA_HOME": str(home / "xdg"), "HOME": str(home)}


def test_the_default_ledger_is_one_per_user_whatever_the_working_directory(tmp_path: Path) -> None:
    env = user_dirs(tmp_path)
    for name in ("worker", "projector", "operator"):
        (tmp_path / name).mkdir()
    emit = (
        "from ledger.bootstrap import build_ledger; from ledger.settings import load_settings\n"
        "with build_ledger(load_settings()) as sdk: sdk.succeeded('t-1', 'app.x', result=1)"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    subprocess.run([sys.executable, "-c", emit], env={**clean, "PYTHONPATH": str(ROOT), **env},
                   cwd=tmp_path / "worker", check=True, timeout=60)  # fmt: skip
    projected = ledger("project", "--until-caught-up", env=env, cwd=tmp_path / "projector")
    assert projected.returncode == 0, projected.stderr
    place = tmp_path / "xdg" / "task-ledger"
    assert f"embedded ledger in {place}" in projected.stderr  # the start-up line names it
    one = ledger("task", "t-1", "--json", env=env, cwd=tmp_path / "operator")
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["status"] == "DONE"


@pytest.mark.kafka
@pytest.mark.postgres
def test_the_demo_runs_against_kafka_and_postgres(kafka_bootstrap: str, postgres_dsn: str) -> None:
    env = {
        "LEDGER_BACKEND": "kafka+postgres",
        "LEDGER_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "LEDGER_POSTGRES_DSN": postgres_dsn,
    }
    done = ledger("demo", "--tasks", "300", env=env)
    assert done.returncode == 0, done.stderr
    assert "Kafka at 127.0.0.1" in done.stdout and "Tasks by status" in done.stdout


def test_an_invalid_setting_is_one_line_naming_the_variable() -> None:
    done = ledger("lag", env={"LEDGER_PARTITIONS": "zero"})
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0
    assert "LEDGER_PARTITIONS" in done.stderr and "Traceback" not in done.stderr


def test_a_bad_duration_is_one_line_naming_the_option(tmp_path: Path) -> None:
    done = ledger("tasks", "--since", "yesterday", env={"LEDGER_DATA_DIR": str(tmp_path)})
    assert done.returncode == 1
    assert "--since" in done.stderr and "Traceback" not in done.stderr


def test_an_unreachable_database_names_what_was_tried() -> None:
    env = {"LEDGER_BACKEND": "kafka+postgres", "LEDGER_POSTGRES_DSN": "postgresql://ledger@127.0.0.1:1/ledger"}
    done = ledger("task", "some-id", env=env)
    assert done.returncode == 1
    assert "127.0.0.1:1" in done.stderr and "Traceback" not in done.stderr


def test_schema_writes_the_json_schema(tmp_path: Path) -> None:
    target = tmp_path / "event.schema.json"
    done = ledger("schema", str(target))
    assert done.returncode == 0, done.stderr
    schema = json.loads(target.read_text())
    assert "task.succeeded" in json.dumps(schema)


def test_project_then_task_and_tasks_read_the_views(tmp_path: Path) -> None:
    env = {"LEDGER_DATA_DIR": str(tmp_path)}
    sdk = build_ledger(load_settings(backend="embedded", data_dir=tmp_path))
    sdk.pending("t-ok", "app.add", args=[1, 2])
    sdk.succeeded("t-ok", "app.add", result=3)
    sdk.failed("t-bad", "app.div", exc=ZeroDivisionError("division by zero"))
    sdk.close()
    assert ledger("project", "--until-caught-up", env=env).returncode == 0
    one = ledger("task", "t-ok", "--json", env=env)
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["status"] == "DONE" and json.loads(one.stdout)["result"] == 3
    failed = ledger("tasks", "--status", "failure", "--json", env=env)
    assert [t["task_id"] for t in json.loads(failed.stdout)] == ["t-bad"]
    table = ledger("tasks", env=env)
    assert "t-ok" in table.stdout and "ZeroDivisionError" in table.stdout
    unknown = ledger("task", "nope", env=env)
    assert unknown.returncode == 1 and "unknown task 'nope'" in unknown.stderr and "Traceback" not in unknown.stderr
    celery_like = ledger("task", "nope", "--pending-if-unknown", env=env)
    assert celery_like.returncode == 0 and "PENDING" in celery_like.stdout
    assert "total: 0" in ledger("lag", env=env).stdout
    rebuilt = ledger("rebuild", "--verify", env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "identical" in rebuilt.stdout and "swapped in" in rebuilt.stdout
    assert json.loads(ledger("task", "t-ok", "--json", env=env).stdout)["result"] == 3  # the rebuilt views


def fill(data_dir: Path) -> None:
    """A task done, a task failed, a periodic task fired twice within one slot; projected."""
    with build_ledger(load_settings(backend="embedded", data_dir=data_dir)) as sdk:
        sdk.pending("t-ok", "app.add", args=[1, 2])
        sdk.succeeded("t-ok", "app.add", result=3)
        sdk.failed("t-bad", "app.div", exc=ZeroDivisionError("division by zero"))
        sdk.register_periodic("every-hour", "app.tick", 3600)
        sdk.delay_periodic("every-hour", dispatch=lambda: "tick-1")
        sdk.delay_periodic("every-hour", dispatch=lambda: "tick-2")  # a second beat, say
    done = ledger("project", "--until-caught-up", env={"LEDGER_DATA_DIR": str(data_dir)})
    assert done.returncode == 0, done.stderr


def row(table: str, first_cell: str) -> dict[str, str]:
    """The row of a printed rich table whose first cell is ``first_cell``, by heading."""
    lines = table.splitlines()
    headings = next([c.strip() for c in re.split("[┃│]", line)] for line in lines if "┃" in line)
    cells = next([c.strip() for c in re.split("[┃│]", line)] for line in lines if f"│ {first_cell} " in line)
    return dict(zip(headings, cells, strict=True))


def test_periodic_shows_two_dispatches_in_one_slot_under_dup(tmp_path: Path) -> None:
    fill(tmp_path)
    shown = row(ledger("periodic", env={"LEDGER_DATA_DIR": str(tmp_path)}).stdout, "every-hour")
    assert shown["dup"] == "1" and shown["due"] == "" and shown["total runs"] == "2"


def test_stats_has_one_shape_now_and_as_of(tmp_path: Path) -> None:
    fill(tmp_path)
    env = {"LEDGER_DATA_DIR": str(tmp_path)}
    every = [status.value for status in TaskStatus]
    now = json.loads(ledger("stats", "--json", env=env).stdout)
    before = json.loads(ledger("stats", "--as-of", "2020-01-01T00:00:00Z", "--json", env=env).stdout)
    then = json.loads(ledger("stats", "--as-of", "2100-01-01T00:00:00Z", "--json", env=env).stdout)
    assert list(now) == list(before) == list(then) == every
    assert now == then and now["DONE"] == 1 and now["FAILURE"] == 1 and now["RETRY"] == 0
    assert set(before.values()) == {0}
    table = ledger("stats", "--as-of", "2020-01-01T00:00:00Z", env=env).stdout
    assert all(row(table, status)["tasks"] == "0" for status in every)


def test_history_json_writes_the_emitter_as_an_object(tmp_path: Path) -> None:
    fill(tmp_path)
    timeline = json.loads(ledger("history", "t-ok", "--json", env={"LEDGER_DATA_DIR": str(tmp_path)}).stdout)
    emitter = timeline["entries"][0]["emitter"]
    assert emitter["pid"] == os.getpid() and emitter["host"]


def test_serve_names_the_ledger_it_serves(tmp_path: Path) -> None:
    fill(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    server = subprocess.Popen([sys.executable, "-m", "ledger", "serve", "--port", str(port)], text=True,
                              env={**clean, "PYTHONPATH": str(ROOT), "LEDGER_DATA_DIR": str(tmp_path)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/tasks/t-ok", timeout=5) as answer:
                    assert json.loads(answer.read())["status"] == "DONE"
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.2)
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=20)
    assert server.returncode == 0
    assert f"embedded ledger in {tmp_path}" in stderr and f"127.0.0.1:{port}" in stderr
