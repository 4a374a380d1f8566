"""Commands that run the ledger: demo, project, rebuild, migrate, lag, serve, schema."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated

import typer

from ledger import render
from ledger.bootstrap import build_event_log, build_projector, build_view_reader, build_view_writer
from ledger.cli.base import CliError, announce, app, run, settings


@app.command()
def demo(
    tasks: Annotated[int, typer.Option(min=1, max=1_000_000, help="how many tasks the fleet runs")] = 3000,
    seed: Annotated[int, typer.Option(help="simulation seed")] = 42,
    keep: Annotated[bool, typer.Option(help="keep the demo's topic and views afterwards")] = False,
    serve: Annotated[bool, typer.Option(help="then serve the dashboard over the demo's views until Ctrl-C")] = False,
    port: Annotated[int, typer.Option(min=1, max=65535, help="the dashboard's port, with --serve")] = 8000,
) -> None:
    """Simulate a fleet of workers, project their events, and show the views (and, with
    --serve, the dashboard over them)."""
    from ledger.demo import Dashboard, run_demo

    def go() -> None:
        dashboard = None
        if serve:
            from ledger.http.app import CannotListen, listen
            from ledger.http.app import serve as serve_api

            try:
                sock = listen("127.0.0.1", port)  # before the demo runs: a taken port fails fast
            except CannotListen as exc:
                raise CliError(f"--port: {exc}") from None

            dashboard = Dashboard(f"http://127.0.0.1:{port}/ui/", lambda demo: serve_api(demo, sock=sock))
        run_demo(settings(), tasks=tasks, seed=seed, keep=keep, console=render.console(), dashboard=dashboard)

    run(go)


@app.command()
def project(
    group: Annotated[str | None, typer.Option(help="consumer group (default LEDGER_PROJECTOR_GROUP)")] = None,
    until_caught_up: Annotated[bool, typer.Option(help="stop once the log's current end is projected")] = False,
    processes: Annotated[int | None, typer.Option(
        min=1, max=64, help="projector processes, members of one group (default LEDGER_PROJECTOR_PROCESSES)")] = None,
) -> None:
    """Run the projector: consume the topic and keep the views up to date (SIGTERM stops it cleanly)."""
    from ledger.cli.members import run_members
    from ledger.consumers.metrics import projector_metrics
    from ledger.consumers.runner import install_stop_signals, run_projector

    def go() -> None:
        config = settings()
        count = processes or config.projector_processes
        if count > 1:
            announce("project", config, f" ({count} processes)")
            arguments = [*(["--group", group] if group else []), *(["--until-caught-up"] if until_caught_up else [])]
            run_members(arguments, config, count)
            return
        announce("project", config)
        projector = build_projector(config, group=group)
        with projector.store, projector_metrics(projector, config.projector_metrics_port):  # the views' lock too
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
        with build_view_writer(settings()) as views:
            applied = views.migrate()
        typer.echo("applied: " + ", ".join(applied) if applied else "schema up to date")

    run(go)


@app.command()
def lag() -> None:
    """Events appended but not yet projected, per partition."""
    from ledger.consumers.lag import projector_lag

    def go() -> None:
        config = settings()
        with build_view_reader(config) as store:
            store.offsets("views", config.topic)  # views never created: say what to run, before the log
            per_partition = projector_lag(build_event_log(config, create=False), store)
        for partition, behind in per_partition.items():
            typer.echo(f"partition {partition}: {behind}")
        typer.echo(f"total: {sum(per_partition.values())}")

    run(go)


@app.command()
def schema(path: Annotated[Path, typer.Argument(help="where to write it")] = Path("ledger-event.schema.json")) -> None:
    """Write the JSON Schema of the event envelope, for services in other languages."""
    from ledger.wire import write_json_schema

    def go() -> None:
        try:
            written = write_json_schema(path)
        except OSError as exc:
            raise CliError(f"PATH: cannot write {str(path)!r}: {exc.strerror or exc}") from None
        typer.echo(f"wrote {written}")

    run(go)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 8000,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs; SIGTERM stops it cleanly)."""
    from ledger.http.app import CannotListen, listen
    from ledger.http.app import serve as serve_api

    def go() -> None:
        config = settings()
        try:
            sock = listen(host, port)
        except CannotListen as exc:
            raise CliError(f"--host/--port: {exc}") from None
        announce("serve", config, f"; serving http://{host}:{port}")
        serve_api(config, sock=sock)

    run(go)
