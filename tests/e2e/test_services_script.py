"""``scripts/services``: tells the truth and fails loudly."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "services"


def services(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=180)


def test_status_reports_both_services_running(kafka_bootstrap: str, postgres_dsn: str) -> None:
    done = services("status")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "postgres: running" in done.stdout and "kafka: running" in done.stdout


def test_env_points_at_the_services() -> None:
    done = services("env")
    assert "LEDGER_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092" in done.stdout
    assert "LEDGER_POSTGRES_DSN=postgresql://" in done.stdout


def test_a_port_taken_by_someone_else_is_refused(tmp_path: Path, postgres_dsn: str) -> None:
    done = services("up", "kafka", LEDGER_SERVICES_DIR=str(tmp_path), LEDGER_KAFKA_PORT="5432")
    assert done.returncode != 0
    assert "127.0.0.1:5432 is taken by a process this script did not start" in done.stderr


def test_a_broker_that_cannot_start_prints_its_log_and_fails(tmp_path: Path, kafka_bootstrap: str) -> None:
    done = services("up", "kafka", LEDGER_SERVICES_DIR=str(tmp_path), LEDGER_KAFKA_PORT="19092",
                    LEDGER_KAFKA_CONTROLLER_PORT="19093", LEDGER_KAFKA_HEAP="1x")  # fmt: skip
    assert done.returncode != 0
    assert "kafka did not start" in done.stderr or "format failed" in done.stderr
    assert "Invalid" in done.stderr or "heap" in done.stderr.lower()  # the JVM's own words, from its log
    assert services("status", LEDGER_SERVICES_DIR=str(tmp_path), LEDGER_KAFKA_PORT="19092").stdout.count("stopped") == 2
