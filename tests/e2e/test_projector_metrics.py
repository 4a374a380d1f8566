"""``ledger project`` with LEDGER_PROJECTOR_METRICS_PORT: the projector process serves its own
counters, scraped over HTTP while it projects a real topic holding poison records."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from ledger.bootstrap import build_projector
from ledger.consumers.metrics import EVENT_TYPES, ProjectorMetrics
from ledger.domain.events import TaskEvent
from ledger.eventlog.base import EventLog, LogRecord
from ledger.settings import Settings, load_settings
from tests.cli import ledger
from tests.faults.processes import environment, kill, start
from tests.streams import append_all, stream

POISON = [
    LogRecord("poison-1", b"\x00\x01 not json"),
    LogRecord("poison-2", b'{"hello": "world"}'),
    LogRecord("poison-3", b"{"),
]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int) -> tuple[str, Samples] | None:
    """The exposition text and its samples, or None while the endpoint is not up yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return None
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return text, samples


def total(samples: Samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def test_ledger_project_serves_its_counters_while_it_projects(settings: Settings, log: EventLog) -> None:
    port = free_port()
    settings = settings.model_copy(update={"projector_batch_size": 40, "projector_metrics_port": port})
    projector = start(settings, "project")
    try:
        deadline = time.monotonic() + 60
        while (first := scrape(port)) is None:  # up before anything is projected
            assert projector.poll() is None, projector.stderr.read() if projector.stderr else ""
            assert time.monotonic() < deadline, "the metrics endpoint never answered"
            time.sleep(0.1)
        assert total(first[1], "ledger_batches_total") == 0

        events = stream(seed=71, tasks=60, duplicates=0, late=0)
        half = len(events) // 2
        append_all(log, events[:half])
        log.append(POISON)  # raw bytes through the event log: the projector must dead-letter them
        append_all(log, events[half:])
        end = sum(log.end_offsets().values())

        deadline = time.monotonic() + 120
        text, samples = first
        # scraped while it projects, until every record is accounted for
        while total(samples, "ledger_events_projected_total") + total(samples, "ledger_dead_letters_total") < end:
            assert projector.poll() is None, projector.stderr.read() if projector.stderr else ""
            assert time.monotonic() < deadline, f"counters stuck: {samples}"
            time.sleep(0.2)
            scraped = scrape(port)
            assert scraped is not None
            text, samples = scraped
    finally:
        kill(projector)

    by_type: dict[str, int] = {}
    for event in events:
        by_type[event.type] = by_type.get(event.type, 0) + 1
    assert {dict(labels)["type"]: v for (n, labels), v in samples.items() if n == "ledger_events_projected_total"} == {
        t: float(c) for t, c in by_type.items()
    }
    assert total(samples, "ledger_dead_letters_total") == len(POISON)  # exactly the poison, no more
    batches = total(samples, "ledger_batches_total")
    assert batches >= len(events) / 40  # batches of at most 40 events
    assert total(samples, "ledger_batch_duration_seconds_count") == batches
    assert total(samples, "ledger_refused_batches_total") == 0
    labels = {k for (_, pairs) in samples for k, _ in pairs}
    assert labels <= {"type", "le"}  # bounded: never a task id or a host
    assert not [e.task_id for e in events if isinstance(e, TaskEvent) and e.task_id in text]


def test_a_progress_bar_and_the_metrics_both_follow_one_projector(settings: Settings, log: EventLog) -> None:
    events = stream(seed=72, tasks=30, duplicates=0, late=0)
    append_all(log, events)
    log.append(POISON[:1])
    progress: list[int] = []
    metrics = ProjectorMetrics()
    projector = build_projector(settings.model_copy(update={"projector_batch_size": 25}))
    projector.add_commit_listener(lambda stats: progress.append(stats.events + stats.dead_letters))
    projector.add_commit_listener(metrics)
    try:
        stats = projector.run_until_caught_up()
    finally:
        projector.close()
    assert progress[-1] == len(events) + 1 and len(progress) == stats.batches
    value = metrics.registry.get_sample_value
    assert sum(value("ledger_events_projected_total", {"type": t}) or 0 for t in EVENT_TYPES) == len(events)
    assert value("ledger_dead_letters_total") == 1 and value("ledger_batches_total") == stats.batches


def test_a_metrics_port_in_use_is_one_line_naming_the_setting(settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        busy = settings.model_copy(update={"projector_metrics_port": taken.getsockname()[1]})
        done = ledger("project", "--until-caught-up", env=environment(busy))
    assert done.returncode == 1
    started, error = done.stderr.strip().splitlines()  # the start-up line naming the ledger, then the error
    assert started.startswith("ledger project: ")
    assert error.startswith("error: LEDGER_PROJECTOR_METRICS_PORT: cannot listen on port")


def test_the_projector_process_does_not_import_the_http_package() -> None:
    probe = "import sys, ledger.cli.ops, ledger.consumers.metrics; print('ledger.http' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], env=environment(load_settings()), capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.stdout.strip() == "False", done.stderr
