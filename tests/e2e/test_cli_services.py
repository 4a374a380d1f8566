"""The ``ledger`` commands against the real Kafka broker and PostgreSQL server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger.bootstrap import build_event_log, build_ledger
from ledger.eventlog.base import LogRecord
from ledger.settings import Settings, load_settings
from ledger.tracked import Retry
from tests.cli import ledger

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(kafka_bootstrap: str, postgres_dsn: str, kafka_topic: str, pg_schema: str) -> dict[str, str]:
    return {
        "LEDGER_BACKEND": "kafka+postgres", "LEDGER_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "LEDGER_POSTGRES_DSN": postgres_dsn, "LEDGER_TOPIC": kafka_topic, "LEDGER_POSTGRES_SCHEMA": pg_schema,
        "LEDGER_PROJECTOR_GROUP": f"g-{kafka_topic}", "LEDGER_CONSUMER_POLL_TIMEOUT_MS": "200",
    }  # fmt: skip


def configured(env: dict[str, str]) -> Settings:
    names = {k.removeprefix("LEDGER_").lower(): v for k, v in env.items()}
    return load_settings(**names)


def fill(env: dict[str, str]) -> datetime:
    """A retried-then-done task, a failed one, a stuck one, a periodic run; projected."""
    sdk = build_ledger(configured(env))
    sdk.pending("t-retry", "app.fetch", args=["url"])
    with pytest.raises(Retry), sdk.track("t-retry", "app.fetch"):
        raise Retry(exc=ValueError("flaky"))  # attempt 0 is retried …
    with sdk.track("t-retry", "app.fetch") as run:
        run.result = {"ok": True}  # … then attempt 1 (the run's next) succeeds
    sdk.failed("t-bad", "app.div", exc=ZeroDivisionError("division by zero"))
    sdk.started("t-stuck", "app.hang")
    sdk.register_periodic("every-minute", "app.tick", 60)
    sdk.delay_periodic("every-minute", dispatch=lambda: "tick-1")
    sdk.close()
    done = ledger("project", "--until-caught-up", env=env)
    assert done.returncode == 0, done.stderr
    return datetime.now(UTC)


def test_reading_commands_show_the_views(env: dict[str, str]) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    fill(env)
    one = json.loads(ledger("task", "t-retry", "--json", env=env).stdout)
    assert one["status"] == "DONE" and one["retries"] == 1 and one["result"] == {"ok": True}
    timeline = ledger("history", "t-retry", env=env)
    assert timeline.returncode == 0 and "task.retried" in timeline.stdout and "task.succeeded" in timeline.stdout
    failed = json.loads(ledger("tasks", "--status", "FAILURE", "--json", env=env).stdout)
    assert [t["task_id"] for t in failed] == ["t-bad"]
    now = json.loads(ledger("stats", "--json", env=env).stdout)
    assert now["DONE"] == 1 and now["FAILURE"] == 1 and now["STARTED"] == 1
    past = json.loads(ledger("stats", "--as-of", before.isoformat(), "--json", env=env).stdout)
    assert sum(past.values()) == 0
    time.sleep(1.1)
    stuck = json.loads(ledger("stuck", "--older-than", "1s", "--json", env=env).stdout)
    assert [t["task_id"] for t in stuck] == ["t-stuck"]
    periodic = ledger("periodic", env=env)
    assert "every-minute" in periodic.stdout and "app.tick" in periodic.stdout
    window = ledger("replay", "--since", before.isoformat(), "--json", env=env)
    assert window.returncode == 0 and len(window.stdout.splitlines()) == 9  # every event fill() emitted


def test_tail_follows_new_events_with_its_filter(env: dict[str, str]) -> None:
    fill(env)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    tail = subprocess.Popen([sys.executable, "-m", "ledger", "tail", "--status", "FAILURE"], text=True,
                            env={**clean, **env, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    time.sleep(4)  # it positions itself at the end
    sdk = build_ledger(configured(env))
    sdk.succeeded("t-new-ok", "app.x", result=1)
    sdk.failed("t-new-bad", "app.x", exc=RuntimeError("late failure"))
    sdk.close()
    assert tail.stdout is not None
    first = tail.stdout.readline()
    tail.send_signal(signal.SIGTERM)
    assert tail.wait(timeout=20) == 0
    assert "task.failed" in first and "t-new-bad" in first and "RuntimeError" in first


def test_dead_letters_can_be_listed_and_replayed(env: dict[str, str]) -> None:
    config = configured(env)
    log = build_event_log(config)
    log.append([LogRecord("poison", b"not json at all")])
    log.close()
    assert ledger("project", "--until-caught-up", env=env).returncode == 0
    listed = ledger("dlq", "list", env=env)
    assert listed.returncode == 0 and "JSON" in listed.stdout
    partition, offset = listed.stdout.split()[0].split(":")[1:]
    again = ledger("dlq", "replay", "--partition", partition, "--offset", offset, env=env)
    assert again.returncode == 0 and "replayed 1" in again.stdout
    missing = ledger("dlq", "replay", "--partition", partition, env=env)
    assert missing.returncode == 1 and "go together" in missing.stderr


def test_unreachable_kafka_is_one_line_naming_the_address(env: dict[str, str]) -> None:
    env = {**env, "LEDGER_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "LEDGER_REQUEST_TIMEOUT_MS": "2000"}
    done = ledger("replay", env=env)
    assert done.returncode == 1 and "127.0.0.1:1" in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0


def test_serve_answers_and_stops_cleanly(env: dict[str, str]) -> None:
    fill(env)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    server = subprocess.Popen([sys.executable, "-m", "ledger", "serve", "--port", str(port)],
                              env={**clean, **env, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/tasks/t-bad", timeout=5) as answer:
                    body = json.loads(answer.read())
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.2)
        assert body["status"] == "FAILURE"
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0


def test_readers_of_views_never_created_say_what_to_run(env: dict[str, str]) -> None:
    for args in (["stats"], ["stats", "--as-of", "1h"], ["tasks"], ["task", "t-1"], ["history", "t-1"], ["lag"]):
        done = ledger(*args, env=env)
        assert done.returncode == 1 and "Traceback" not in done.stderr, (args, done.stderr)
        assert done.stderr.strip().count("\n") == 0, (args, done.stderr)
        schema = env["LEDGER_POSTGRES_SCHEMA"]
        assert f"no ledger views in PostgreSQL schema {schema!r}" in done.stderr and "ledger migrate" in done.stderr
