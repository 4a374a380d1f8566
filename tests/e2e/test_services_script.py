"""``scripts/services``: tells the truth and fails loudly."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "services"


def services(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=180)


def test_status_reports_kafka_and_postgres_running(kafka_bootstrap: str, postgres_dsn: str) -> None:
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
    assert services("status", LEDGER_SERVICES_DIR=str(tmp_path), LEDGER_KAFKA_PORT="19092").stdout.count("stopped") == 4


def test_env_points_at_the_celery_brokers() -> None:
    done = services("env")
    assert "LEDGER_REDIS_URL=redis://127.0.0.1:6379/0" in done.stdout
    assert "LEDGER_RABBITMQ_URL=amqp://guest:guest@127.0.0.1:5672//" in done.stdout


def test_status_reports_the_brokers_running_unprivileged() -> None:
    done = services("status")
    for name in ("redis", "rabbitmq"):
        line = next(line for line in done.stdout.splitlines() if line.startswith(f"{name}:"))
        assert line.startswith(f"{name}: running (pid "), done.stdout + done.stderr
        pid = line.split("(pid ")[1].split(")")[0]
        user = subprocess.run(["ps", "-o", "user=", "-p", pid], capture_output=True, text=True).stdout.strip()
        assert user == (name if os.geteuid() == 0 else os.environ.get("USER", user)), (name, user)


@pytest.fixture
def services_dir() -> Iterator[Path]:
    """A directory the brokers' unprivileged users can reach (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="ledger-services-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_private_pair_of_brokers_starts_answers_and_stops_alone(services_dir: Path) -> None:
    """Up on other ports in another directory, then down: only what that up started stops
    (the suite's brokers keep running)."""
    private = {"LEDGER_SERVICES_DIR": str(services_dir), "LEDGER_REDIS_PORT": "16399", "LEDGER_RABBITMQ_PORT": "15699",
               "LEDGER_RABBITMQ_DIST_PORT": "15698"}  # fmt: skip
    try:
        for name in ("redis", "rabbitmq"):
            up = services("up", name, **private)
            assert up.returncode == 0, up.stderr
        status = services("status", **private).stdout
        assert "redis: running" in status and "on 127.0.0.1:16399" in status
        assert "rabbitmq: running" in status and "on 127.0.0.1:15699" in status
        with socket.create_connection(("127.0.0.1", 16399), timeout=5) as redis:
            redis.sendall(b"PING\r\n")
            assert redis.recv(16) == b"+PONG\r\n"
        with socket.create_connection(("127.0.0.1", 15699), timeout=5) as amqp:
            amqp.sendall(b"AMQP\x00\x00\x09\x01")
            assert amqp.recv(7)[:1] == b"\x01"  # a Connection.Start frame: an AMQP 0-9-1 server
    finally:
        for name in ("rabbitmq", "redis"):
            services("down", name, **private)
    status = services("status", **private).stdout
    assert "redis: stopped" in status and "rabbitmq: stopped" in status
    shared = services("status").stdout
    assert "redis: running" in shared and "rabbitmq: running" in shared


def test_a_broker_port_taken_by_someone_else_is_refused(tmp_path: Path, postgres_dsn: str) -> None:
    for name, variable in (("redis", "LEDGER_REDIS_PORT"), ("rabbitmq", "LEDGER_RABBITMQ_PORT")):
        done = services("up", name, LEDGER_SERVICES_DIR=str(tmp_path), **{variable: "5432"})
        assert done.returncode != 0
        assert "127.0.0.1:5432 is taken by a process this script did not start" in done.stderr
