"""The ``ledger`` command as a user runs it: a real process, real output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def ledger(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return subprocess.run(
        [sys.executable, "-m", "ledger", *args],
        env={**clean, "PYTHONPATH": str(ROOT), **(env or {})},
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_demo_runs_on_the_embedded_default_and_prints_the_summary(tmp_path: Path) -> None:
    done = ledger("demo", "--tasks", "400", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for heading in ("Tasks by status", "Slowest tasks", "Latest failures", "Timeline of", "Periodic tasks"):
        assert heading in out
    assert "projected" in out and "0 dead letters" in out
    assert "reports.nightly" in out and "total runs" in out
    assert not (tmp_path / ".ledger").exists()  # the demo cleans up after itself


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
    assert "Kafka 127.0.0.1" in done.stdout and "Tasks by status" in done.stdout


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
    from ledger.bootstrap import build_ledger
    from ledger.settings import load_settings

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
