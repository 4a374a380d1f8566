"""The benchmark runs end to end at a tiny size against the real services and writes a JSON
result with every row. No timing is asserted: figures live in the benchmark, not in tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[2]
ROWS = ("produce", "project", "replay", "projector memory", "series", "latency", "failure groups", "query", "search",
        "tasks page", "workflow", "in-memory peer", "emit rules", "ingest", "project late")  # fmt: skip


def _numbers(values: dict[str, object]) -> list[float]:
    return [v for v in values.values() if isinstance(v, int | float) and not isinstance(v, bool)]


def test_bench_writes_every_row(kafka_bootstrap: str, postgres_dsn: str, rabbitmq_url: str, tmp_path: Path) -> None:
    pytest.importorskip("celery", reason="the in-memory peer row needs the `bench` extra (celery)")
    env = {**os.environ, "LEDGER_BACKEND": "kafka+postgres", "LEDGER_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "LEDGER_POSTGRES_DSN": postgres_dsn, "PYTHONPATH": str(ROOT)}  # fmt: skip
    command = [sys.executable, "-m", "bench", "--events", "2000", "--latency-seconds", "1", "--query-rows", "5000",
               "--rules-tasks", "200", "--workflow-tasks", "301", "--ingest-events", "2000", "--rabbitmq", rabbitmq_url,
               "--late-events", "2000", "--latency-fast-rate", "2000", "--project-processes", "2",
               "--output", str(tmp_path), "--settle-s", "0"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    [path] = tmp_path.glob("bench-*.json")
    result = json.loads(path.read_text())

    assert list(result["rows"]) == list(ROWS)
    for name, row in result["rows"].items():
        figures = _numbers(row["ledger"]) + _numbers(row["baseline"])
        assert figures and all(f > 0 for f in figures), (name, row)
    assert result["rows"]["project"]["exactly_once"]["ok"]
    members = result["rows"]["project"]["processes"]  # ledger project --processes 2, into views of its own
    assert members["processes"] == 2 and members["same_views"] and members["events_per_s"] > 0
    assert result["rows"]["replay"]["same_views"]  # the rebuild remade the projector's views
    assert result["rows"]["latency"]["ledger"]["seen"] == result["rows"]["latency"]["ledger"]["events"]
    assert result["rows"]["query"]["ledger"]["rows"] >= 5000
    assert result["rows"]["workflow"]["ledger"]["workflow_tasks"] == 301
    assert result["rows"]["tasks page"]["ledger"]["rows"] >= 5000
    assert result["rows"]["series"]["detail"]["same_result"]
    assert result["rows"]["ingest"]["ledger"]["events"] == 2000
    assert result["rows"]["ingest"]["ledger"]["confluent_events_per_s"] > 0  # each Kafka client measured
    assert result["rows"]["ingest"]["ratio_with_confluent"] > 0
    assert result["rows"]["ingest"]["floor"]["events_per_s"] > 0  # the same reader and log, no translation
    late = result["rows"]["project late"]
    assert late["same_views"] and late["tasks"] > 0 and late["ledger"]["events"] > 2000  # duplicates on top
    assert result["rows"]["latency"]["faster"]["rate_per_s"] == 2000
    assert result["rows"]["produce"]["ledger"]["confluent_events_per_s"] > 0  # the SDK on each client
    assert result["projector_memory"]["peak_rss_mb"] > 0
    assert result["machine"]["cpu_count"] and result["machine"]["postgresql"]
    quiet = result["machine"]["quiet_at_start"]  # a suite's run is often busy: flagged, not refused
    assert quiet["waited_s"] == 0 and quiet["busy"] is (quiet["load_1m"] > quiet["busy_limit"])
    assert ("BUSY machine at start" in done.stdout) is quiet["busy"]
    assert "Task Ledger benchmark" in done.stdout


def test_bench_runs_a_standalone_row_alone(kafka_bootstrap: str, postgres_dsn: str, rabbitmq_url: str,
                                           tmp_path: Path) -> None:  # fmt: skip
    pytest.importorskip("celery", reason="the ingest row needs the `bench` extra (celery)")
    env = {**os.environ, "LEDGER_BACKEND": "kafka+postgres", "LEDGER_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "LEDGER_POSTGRES_DSN": postgres_dsn, "PYTHONPATH": str(ROOT)}  # fmt: skip
    command = [sys.executable, "-m", "bench", "--only", "ingest", "--ingest-events", "400", "--rabbitmq", rabbitmq_url,
               "--output", str(tmp_path), "--settle-s", "0"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    [path] = tmp_path.glob("bench-*.json")
    result = json.loads(path.read_text())
    assert list(result["rows"]) == ["ingest"] and result["rows"]["ingest"]["ledger"]["events"] == 400
    assert "ingest alone" in done.stdout and "produce" not in done.stdout

    refused = subprocess.run([sys.executable, "-m", "bench", "--only", "project"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip().splitlines()[-1].endswith(
        "--only: 'project' cannot run alone; one of latency, emit rules, ingest, project late"
    )
