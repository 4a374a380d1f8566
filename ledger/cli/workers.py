"""``ledger workers``: the Celery workers the ledger has heard from, online or offline now
(list, or show one with the tasks it ran)."""

from __future__ import annotations

from typing import Annotated

import typer

from ledger import render
from ledger.bootstrap import build_worker_queries
from ledger.cli.base import CliError, app, parse_identifier, run, settings
from ledger.projections.workers import MAX_LIMIT

workers = typer.Typer(help="Celery workers from their own events: online or offline, load, counts, software.")
app.add_typer(workers, name="workers")
JsonFlag = Annotated[bool, typer.Option("--json", help="JSON output for scripts")]


@workers.callback(invoke_without_command=True)
def workers_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=MAX_LIMIT)] = 200,
    as_json: JsonFlag = False,
) -> None:
    """Every worker by hostname: online, or offline (it stopped, or missed 3 heartbeats)."""
    if ctx.invoked_subcommand is not None:
        return

    def go() -> None:
        found = build_worker_queries(settings()).workers(limit=limit)
        if as_json:
            typer.echo(render.as_json(found))
            return
        online = sum(1 for w in found if w.status == "online")
        render.console().print(render.workers_table(found, f"{len(found)} workers, {online} online"))

    run(go)


@workers.command("show")
def workers_show(hostname: str, as_json: JsonFlag = False) -> None:
    """One worker: its status, heartbeat, load and counts, and the tasks it ran."""

    def go() -> None:
        name = parse_identifier(hostname, "HOSTNAME")
        assert name is not None
        worker = build_worker_queries(settings()).worker(name)
        if worker is None:
            raise CliError(f"unknown worker {hostname!r}: no event of it (`ledger workers` lists them)")
        if as_json:
            typer.echo(render.as_json(worker))
            return
        terminal = render.console()
        terminal.print(render.workers_table([worker], f"Worker {worker.hostname}"))
        terminal.print(render.counts_table(worker.tasks, "Its tasks by status"))
        typer.echo(f"newest tasks: {' '.join(worker.newest_tasks) or '—'}")

    run(go)
