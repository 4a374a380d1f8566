"""Fault-injection tests (``pytest -m faults``): real processes killed with real signals,
real servers restarted. Each test records what it injected and what it counted in the
reliability report printed at the end of the run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ledger.settings import Settings, load_settings

EVENTS = int(os.environ.get("LEDGER_FAULT_EVENTS", "100000"))
"""Events of the crash test; the default run uses the issue's 100,000."""


@dataclass
class ReliabilityRow:
    test: str
    injected: str
    events: int
    lost: int
    doubled: int


REPORT: list[ReliabilityRow] = []


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Iterator[list[ReliabilityRow]]:
    yield REPORT


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REPORT:
        return
    terminalreporter.section("reliability report")
    terminalreporter.write_line(f"{'test':<34} {'injected':<58} {'events':>8} {'lost':>5} {'doubled':>7}")
    for row in REPORT:
        terminalreporter.write_line(f"{row.test:<34} {row.injected:<58} {row.events:>8} {row.lost:>5} {row.doubled:>7}")


@pytest.fixture
def kafka_settings(kafka_bootstrap: str, postgres_dsn: str, kafka_topic: str, pg_schema: str) -> Settings:
    return load_settings(
        backend="kafka+postgres", topic=kafka_topic, postgres_schema=pg_schema, partitions=6,
        kafka_bootstrap_servers=kafka_bootstrap, postgres_dsn=postgres_dsn, consumer_poll_timeout_ms=200,
        projector_batch_wait_ms=20, projector_group=f"g-{kafka_topic}", consumer_session_timeout_ms=6000,
        delivery_timeout_ms=20_000, request_timeout_ms=5_000,
    )  # fmt: skip
