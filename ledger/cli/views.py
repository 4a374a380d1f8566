"""Commands that read the views: task, tasks, periodic, history, stuck, stats."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from ledger import render
from ledger.bootstrap import build_queries, build_series_queries, build_view_reader
from ledger.cli.base import CliError, app, parse_duration, parse_identifier, parse_moment, run, settings
from ledger.cli.search import KWARG_HELP, SEARCH_HELP, search_fields
from ledger.domain.series import bucket_width
from ledger.domain.statuses import every_status, parse_status
from ledger.projections.history import as_of, stuck_tasks
from ledger.projections.store import DEFAULT_ORDER, TaskFilter, TaskOrder
from ledger.projections.timeline import build_timeline
from ledger.settings import Settings

JsonFlag = Annotated[bool, typer.Option("--json", help="JSON output for scripts")]
SORT_HELP = (
    "-first_seen (newest first by first appearance), first_seen (oldest first), -changed / changed "
    "(by when the status last changed); write --sort=-changed"
)


@app.command()
def task(
    task_id: str,
    at: Annotated[str | None, typer.Option("--as-of", help="the state at this time (ISO 8601 or e.g. 2h)")] = None,
    pending_if_unknown: Annotated[bool, typer.Option(help="an unknown id reads as PENDING, as in Celery")] = False,
    as_json: JsonFlag = False,
) -> None:
    """One task's row: its current state, or its state at a past moment."""

    def go() -> None:
        parse_identifier(task_id, "TASK_ID")
        config = settings()
        if at is not None:
            with build_view_reader(config) as reader:
                state = as_of(reader, task_id, parse_moment(at, "--as-of"))
        else:
            state = build_queries(config).task_state(task_id)
        if state is None and not pending_if_unknown:
            raise CliError(f"unknown task {task_id!r}: the ledger has no event of it" + (" by then" if at else ""))
        if as_json:
            typer.echo(render.as_json(state) if state else render.as_json({"task_id": task_id, "status": "PENDING"}))
        elif state is None:
            typer.echo(f"{task_id}: PENDING (unknown to the ledger)")
        else:
            render.console().print(render.tasks_table([state], f"Task {task_id}", error=True))

    run(go)


@app.command()
def tasks(
    status: Annotated[list[str] | None, typer.Option(help="PENDING, RECEIVED, … (repeatable)")] = None,
    name: Annotated[str | None, typer.Option(help="task name")] = None,
    worker: Annotated[str | None, typer.Option(help="worker name")] = None,
    since: Annotated[str | None, typer.Option(help="changed within, e.g. 1h")] = None,
    until: Annotated[str | None, typer.Option(help="changed before (ISO 8601 or e.g. 2h ago)")] = None,
    search: Annotated[str | None, typer.Option(help=SEARCH_HELP)] = None,
    kwarg: Annotated[list[str] | None, typer.Option(help=KWARG_HELP)] = None,
    queue: Annotated[str | None, typer.Option(help="queue name")] = None,
    root: Annotated[str | None, typer.Option(help="workflow root task id")] = None,
    parent: Annotated[str | None, typer.Option(help="parent task id")] = None,
    runtime_above: Annotated[float | None, typer.Option(help="runtime longer than these seconds")] = None,
    runtime_below: Annotated[float | None, typer.Option(help="runtime shorter than these seconds")] = None,
    retried: Annotated[bool, typer.Option("--retried", help="only tasks that retried at least once")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    sort: Annotated[str, typer.Option(help=SORT_HELP)] = DEFAULT_ORDER.value,
    as_json: JsonFlag = False,
) -> None:
    """List tasks, newest first by when the ledger first saw them (or --sort); filter and search them."""

    def go() -> None:
        order = TaskOrder.parse(sort, "--sort")
        where = TaskFilter(
            statuses=tuple(parse_status(s) for s in status or ()),
            name=parse_identifier(name, "--name"),
            worker=parse_identifier(worker, "--worker"),
            since=datetime.now(UTC) - parse_duration(since, "--since") if since is not None else None,
            until=parse_moment(until, "--until") if until is not None else None,
            queue=parse_identifier(queue, "--queue"),
            root_id=parse_identifier(root, "--root"),
            parent_id=parse_identifier(parent, "--parent"),
            retried=retried,
            **search_fields(search, kwarg, runtime_above, runtime_below),
        )
        page = build_queries(settings()).list_tasks(where, limit=limit, order=order)
        if as_json:
            typer.echo(render.as_json(page.items))
        else:
            render.console().print(render.tasks_table(page.items, f"{len(page.items)} tasks", error=True))

    run(go)


@app.command()
def history(task_id: str, as_json: JsonFlag = False) -> None:
    """A task's timeline: every event in log order, who emitted it, status before and after,
    late events and gaps marked."""

    def go() -> None:
        parse_identifier(task_id, "TASK_ID")
        with build_view_reader(settings()) as reader:
            rows = reader.task_events(task_id)
        if not rows:
            raise CliError(f"unknown task {task_id!r}: the ledger has no event of it")
        timeline = build_timeline(rows)
        if as_json:
            typer.echo(render.as_json(timeline))
        else:
            render.console().print(render.timeline_table(timeline))

    run(go)


@app.command()
def stuck(
    older_than: Annotated[str, typer.Option(help="no terminal event for longer than this, e.g. 30m")] = "1h",
    as_json: JsonFlag = False,
) -> None:
    """Tasks whose latest attempt has had no terminal event for too long ("stuck in STARTED")."""

    def go() -> None:
        older = parse_duration(older_than, "--older-than")
        found = stuck_tasks(build_view_reader(settings()), older, datetime.now(UTC))
        if as_json:
            typer.echo(render.as_json(found))
        else:
            render.console().print(render.tasks_table(found, f"{len(found)} tasks stuck for over {older_than}"))

    run(go)


@app.command()
def stats(
    at: Annotated[str | None, typer.Option("--as-of", help="counts at this time (ISO 8601 or e.g. 2h)")] = None,
    series: Annotated[
        str | None, typer.Option("--series", help="a time series per bucket: 1m, 5m, 15m, 1h, 6h or 1d")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="with --series: from (e.g. 6h, or an ISO 8601 time; default 1h)")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="with --series: until (e.g. 10m, or an ISO 8601 time; default now)")
    ] = None,
    name: Annotated[str | None, typer.Option(help="with --series: only tasks of this name")] = None,
    queue: Annotated[str | None, typer.Option(help="with --series: only tasks of this queue")] = None,
    as_json: JsonFlag = False,
) -> None:
    """How many tasks are in each status, now or at a past moment ("what was running at 02:13?");
    with --series, what happened per bucket: transitions counted, runtime and queue-wait percentiles."""

    def go() -> None:
        config = settings()
        if series is not None:
            _series(config, series, since, until, name, queue, at, as_json)
            return
        for option, value in (("--since", since), ("--until", until), ("--name", name), ("--queue", queue)):
            if value is not None:
                raise CliError(f"{option}: only with --series (a time series), e.g. --series 1m {option} …")
        if at is None:
            counts = build_queries(config).status_counts()
        else:
            with build_view_reader(config) as reader:
                counts = every_status(reader.status_counts_as_of(parse_moment(at, "--as-of")))
        if as_json:
            typer.echo(render.as_json({s.value: n for s, n in counts.items()}))
        else:
            render.console().print(render.counts_table(counts, f"Tasks by status{' as of ' + at if at else ''}"))

    run(go)


def _series(config: Settings, bucket: str, since: str | None, until: str | None, name: str | None,
            queue: str | None, at: str | None, as_json: bool) -> None:  # fmt: skip
    """``stats --series``: the bucket and window checked here first, so errors name the options."""
    if at is not None:
        raise CliError("--as-of: not with --series (a series covers a window: --since, --until)")
    bucket_width(bucket, "--series")
    with build_view_reader(config) as reader:
        found = build_series_queries(config, reader).series(
            bucket, parse_moment(since or "1h", "--since"), parse_moment(until, "--until") if until else None,
            name=parse_identifier(name, "--name"), queue=parse_identifier(queue, "--queue"),
            names=("--series", "--since", "--until"),
        )  # fmt: skip
    if as_json:
        typer.echo(render.as_json(found))
        return
    about = "".join(f" {k} {v}" for k, v in (("name", name), ("queue", queue)) if v)
    render.console().print(render.series_table(found, f"Per {bucket} from {render.when(found.start)}{about}"))


@app.command()
def periodic(as_json: JsonFlag = False) -> None:
    """Periodic tasks with their last run, run count, missed runs and whether they are due."""

    def go() -> None:
        items = build_queries(settings()).periodic_tasks()
        if as_json:
            typer.echo(render.as_json(items))
        else:
            render.console().print(render.periodic_table(items))

    run(go)
