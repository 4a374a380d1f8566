"""``ledger …``: the command line. Commands translate arguments and delegate; errors are one
clear line on stderr and a non-zero exit code, never a traceback.

Built on Typer (Click underneath): typed options, help and shell completion for free.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from ledger import logs, render
from ledger.bootstrap import build_event_log, build_projector, build_queries, build_view_store
from ledger.domain.statuses import parse_status
from ledger.eventlog.base import EventLogUnavailable
from ledger.projections.rebuild import RebuildInProgress
from ledger.projections.store import TaskFilter, ViewStoreUnavailable
from ledger.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    help="Task Ledger: the history of every task.",
)
T = TypeVar("T")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 1."""


def parse_duration(text: str, option: str) -> timedelta:
    """'90s', '15m', '1h', '7d', '2w' → timedelta; anything else names the option."""
    match = _DURATION.match(text.strip())
    if not match:
        raise CliError(f"{option}: {text!r} is not a duration like 90s, 15m, 1h, 7d or 2w")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


@contextmanager
def failures_as_one_line() -> Iterator[None]:
    try:
        yield
    except (CliError, SettingsError, EventLogUnavailable, ViewStoreUnavailable, RebuildInProgress, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def settings() -> Settings:
    loaded = load_settings()
    logs.configure(loaded.log_level, loaded.log_format)
    return loaded


def run(command: Callable[[], T]) -> T:
    with failures_as_one_line():
        return command()


@app.command()
def demo(
    tasks: Annotated[int, typer.Option(min=1, max=1_000_000, help="how many tasks the fleet runs")] = 3000,
    seed: Annotated[int, typer.Option(help="simulation seed")] = 42,
    keep: Annotated[bool, typer.Option(help="keep the demo's topic and views afterwards")] = False,
) -> None:
    """Simulate a fleet of workers, project their events, and show the views."""
    from ledger.demo import run_demo

    run(lambda: run_demo(settings(), tasks=tasks, seed=seed, keep=keep, console=render.console()))


@app.command()
def project(
    group: Annotated[str | None, typer.Option(help="consumer group (default LEDGER_PROJECTOR_GROUP)")] = None,
    until_caught_up: Annotated[bool, typer.Option(help="stop once the log's current end is projected")] = False,
) -> None:
    """Run the projector: consume the topic and keep the views up to date (SIGTERM stops it cleanly)."""
    from ledger.consumers.runner import install_stop_signals, run_projector

    def go() -> None:
        config = settings()
        projector = build_projector(config, group=group)
        if until_caught_up:
            projector.run_until_caught_up()
            projector.close()
            return
        stop = threading.Event()
        install_stop_signals(stop)
        run_projector(projector, build_event_log(config), stop)

    run(go)


@app.command()
def rebuild(
    verify: Annotated[bool, typer.Option(help="compare the rebuilt views with the live ones, row by row")] = False,
    dry_run: Annotated[bool, typer.Option(help="stop after the comparison; keep the live views")] = False,
) -> None:
    """Replay the log from offset 0 into fresh views and swap them in atomically."""
    from ledger.bootstrap import build_rebuild
    from ledger.progress import Progress

    def go() -> None:
        report = build_rebuild(settings(), progress=Progress("rebuild")).run(verify=verify, dry_run=dry_run)
        if report.diff is not None:
            typer.echo(report.diff.report())
        outcome = "swapped in" if report.swapped else "dry run: the live views are unchanged"
        typer.echo(f"replayed {report.events:,} events in {report.seconds:.1f}s; {outcome}")

    run(go)


@app.command()
def migrate() -> None:
    """Create or upgrade the views' schema (applying twice is harmless)."""

    def go() -> None:
        applied = build_view_store(settings()).migrate()
        typer.echo("applied: " + ", ".join(applied) if applied else "schema up to date")

    run(go)


@app.command()
def lag() -> None:
    """Events appended but not yet projected, per partition."""
    from ledger.consumers.lag import projector_lag

    def go() -> None:
        config = settings()
        per_partition = projector_lag(build_event_log(config), build_view_store(config))
        for partition, behind in per_partition.items():
            typer.echo(f"partition {partition}: {behind}")
        typer.echo(f"total: {sum(per_partition.values())}")

    run(go)


@app.command()
def task(task_id: str, as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False) -> None:
    """One task's row (an id the ledger never saw reads as PENDING, as in Celery)."""

    def go() -> None:
        meta = build_queries(settings()).get_task(task_id)
        if as_json:
            typer.echo(render.as_json(meta))
        elif meta.state is None:
            typer.echo(f"{task_id}: PENDING (unknown to the ledger)")
        else:
            render.console().print(render.tasks_table([meta.state], f"Task {task_id}", error=True))

    run(go)


@app.command()
def tasks(
    status: Annotated[list[str] | None, typer.Option(help="PENDING, RECEIVED, … (repeatable)")] = None,
    name: Annotated[str | None, typer.Option(help="task name")] = None,
    worker: Annotated[str | None, typer.Option(help="worker name")] = None,
    since: Annotated[str | None, typer.Option(help="changed within, e.g. 1h")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """List tasks, newest change first."""

    def go() -> None:
        where = TaskFilter(
            statuses=tuple(parse_status(s) for s in status or ()),
            name=name,
            worker=worker,
            since=datetime.now(UTC) - parse_duration(since, "--since") if since else None,
        )
        page = build_queries(settings()).list_tasks(where, limit=limit)
        if as_json:
            typer.echo(render.as_json(page.items))
        else:
            render.console().print(render.tasks_table(page.items, f"{len(page.items)} tasks", error=True))

    run(go)


@app.command()
def periodic(as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False) -> None:
    """Periodic tasks with their last run, run count, missed runs and whether they are due."""

    def go() -> None:
        items = build_queries(settings()).periodic_tasks()
        if as_json:
            typer.echo(render.as_json(items))
        else:
            render.console().print(render.periodic_table(items))

    run(go)


@app.command()
def schema(path: Annotated[Path, typer.Argument(help="where to write it")] = Path("ledger-event.schema.json")) -> None:
    """Write the JSON Schema of the event envelope, for services in other languages."""
    from ledger.wire import write_json_schema

    run(lambda: typer.echo(f"wrote {write_json_schema(path)}"))


def main() -> None:
    app(prog_name="ledger")


if __name__ == "__main__":
    main()
