"""``ledger demo``: a simulated fleet runs a few thousand tasks through the real pipeline —
emit SDK → event log → projector → views — and the views are printed as an operator
would want to see them. On the embedded default it needs no servers and runs in a
temporary directory of its own; with ``LEDGER_*`` pointing at Kafka and PostgreSQL it runs
against them, on its own topic and schema. It never touches the configured ledger's data.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from rich.console import Console

from ledger import render
from ledger.bootstrap import (
    build_event_log,
    build_ledger,
    build_projector,
    build_queries,
    build_view_reader,
    build_view_writer,
    place,
)
from ledger.domain.statuses import TaskStatus
from ledger.progress import Progress
from ledger.projections.store import TaskFilter, ViewReader, ViewWriter
from ledger.projections.timeline import build_timeline
from ledger.settings import LogBackend, Settings, ViewsBackend
from ledger.simulate import simulate


@contextmanager
def demo_settings(settings: Settings, keep: bool) -> Iterator[Settings]:
    """The demo's own place, never the configured ledger's data: on Kafka a topic and
    consumer group of its own, on PostgreSQL a schema of its own; for what lives in SQLite
    files a fresh temporary directory (the configured topic names in it, so every command
    reads a kept demo with just ``LEDGER_DATA_DIR``), removed afterwards unless ``keep``."""
    run = uuid.uuid4().hex[:8]
    own: dict[str, object] = {}
    if settings.log_backend is LogBackend.KAFKA:
        own.update(topic=f"ledger-demo-{run}", projector_group=f"ledger-demo-{run}")
    if settings.views_backend is ViewsBackend.POSTGRES:
        own["postgres_schema"] = f"ledger_demo_{run}"
    if not _uses_files(settings):
        yield settings.model_copy(update=own)
        return
    folder = Path(tempfile.mkdtemp(prefix="ledger-demo-"))
    try:
        yield settings.model_copy(update={**own, "data_dir": folder})
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


def _uses_files(settings: Settings) -> bool:
    return LogBackend.SQLITE is settings.log_backend or ViewsBackend.SQLITE is settings.views_backend


class Dashboard(NamedTuple):
    """Where the dashboard will answer, and what serves it over given settings (until stopped)."""

    url: str
    serve: Callable[[Settings], None]


def run_demo(settings: Settings, *, tasks: int, seed: int, keep: bool, console: Console,
             dashboard: Dashboard | None = None) -> None:  # fmt: skip
    """Emit, project and show; with ``dashboard``, then serve it over the demo's views
    until stopped, before they are removed."""
    with demo_settings(settings, keep) as demo:
        where = place(demo)
        console.print(f"[bold]Task Ledger demo[/]: {tasks:,} tasks from a simulated fleet, on {where}", soft_wrap=True)
        log = build_event_log(demo)
        views = build_view_writer(demo)
        try:
            emitted = emit(demo, tasks, seed, console)
            project(demo, views, emitted, console)
            with build_view_reader(demo) as reader:
                show(reader, demo, console)
            if dashboard is None:
                console.print("See it in a browser: [bold]scripts/dev demo --serve[/] (ledger demo --serve)")
            else:
                console.print(f"dashboard over the demo's views: [bold]{dashboard.url}[/] (Ctrl-C stops it)",
                              soft_wrap=True)  # fmt: skip
                dashboard.serve(demo)
        finally:
            if not keep:
                views.drop()
                if hasattr(log, "delete_topic"):
                    log.delete_topic()
            views.close()
            log.close()
        if keep:
            console.print(f"kept the demo's ledger: {where}; look at it with", soft_wrap=True, markup=False)
            console.print(f"  {look_command(demo)}", soft_wrap=True, markup=False)


def look_command(settings: Settings) -> str:
    """The command line that reads the kept demo's views."""
    variables = []
    if settings.log_backend is LogBackend.KAFKA:
        variables.append(f"LEDGER_TOPIC={settings.topic}")
    if settings.views_backend is ViewsBackend.POSTGRES:
        variables.append(f"LEDGER_POSTGRES_SCHEMA={settings.postgres_schema}")
    if _uses_files(settings):
        variables.append(f"LEDGER_DATA_DIR={settings.data_dir}")
    return " ".join([*variables, "ledger tasks"])


def emit(settings: Settings, tasks: int, seed: int, console: Console) -> int:
    events = simulate(tasks, seed=seed, periodic=3, periodic_runs=20, duplicates=tasks // 100, late=tasks // 100)
    ledger = build_ledger(settings)
    started = time.monotonic()
    bar = Progress("emit", console=console)
    bar.start(len(events))
    for first in range(0, len(events), 1000):
        ledger.emit_many(events[first : first + 1000])
        bar.update(min(first + 1000, len(events)))
    bar.finish()
    ledger.close()
    console.print(
        f"emitted {len(events):,} events in {time.monotonic() - started:.2f}s "
        f"(including {tasks // 100} duplicate appends and {tasks // 100} late events)"
    )
    return len(events)


def project(settings: Settings, views: ViewWriter, total: int, console: Console) -> None:
    started = time.monotonic()
    bar = Progress("project", console=console)
    bar.start(total)
    projector = build_projector(settings, store=views)
    projector.add_commit_listener(lambda stats: bar.update(stats.events + stats.dead_letters))
    try:
        stats = projector.run_until_caught_up()
    finally:
        projector.close()
    bar.finish()
    seconds = time.monotonic() - started
    console.print(
        f"projected {stats.events:,} events in {stats.batches} batches in {seconds:.2f}s "
        f"({stats.events / seconds:,.0f} events/s), {stats.dead_letters} dead letters"
    )


def show(reader: ViewReader, settings: Settings, console: Console) -> None:
    queries = build_queries(settings, reader)
    console.print(render.counts_table(queries.status_counts()))
    console.print(render.tasks_table(reader.slowest_tasks(5), "Slowest tasks"))
    failed = queries.list_tasks(TaskFilter(statuses=(TaskStatus.FAILURE,)), limit=5).items
    console.print(render.tasks_table(failed, "Latest failures", error=True))
    retried = next((t for t in queries.list_tasks(limit=1000).items if t.retries > 1), None)
    if retried is not None:
        console.print(render.timeline_table(build_timeline(reader.task_events(retried.task_id))))
    console.print(render.periodic_table(queries.periodic_tasks()))
