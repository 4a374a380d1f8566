"""``ledger reconcile celery --app MODULE``: the outcomes of tasks whose events were lost,
read from the Celery application's result backend (``contrib.celery_reconcile``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ledger.bootstrap import build_ledger, build_queries
from ledger.cli.base import CliError, app, run, settings
from ledger.progress import Progress

reconciling = typer.Typer(no_args_is_help=True, help="Record outcomes the ledger missed, from where they were kept.")
app.add_typer(reconciling, name="reconcile")


@reconciling.command("celery")
def reconcile_celery(
    app_name: Annotated[str, typer.Option("--app", help="the Celery application, as `celery -A` takes it")],
) -> None:
    """For each task the views show unfinished, append the outcome (DONE, FAILURE, REVOKED)
    the application's result backend reports, marked as reconciled: what a Redis broker lost
    while no ingester listened. Running it again appends nothing new."""
    from ledger.contrib.celery_reconcile import reconcile

    def go() -> None:
        backend = result_backend(app_name)
        config = settings()
        progress = Progress("reconcile")
        progress.start(0)
        with build_ledger(config) as ledger:
            done = reconcile(backend, build_queries(config), ledger, on_progress=progress.update)
        progress.finish()
        typer.echo(f"checked {done.checked:,} unfinished tasks, recorded {done.recorded:,} outcomes")

    run(go)


def result_backend(app_name: str) -> Any:
    """The result backend of the Celery application ``app_name`` names; a one-line error when
    it cannot be loaded or has none."""
    from ledger.contrib.celery_app import load_app

    try:
        celery_app = load_app(app_name)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if not celery_app.conf.result_backend:
        raise CliError(f"--app: {app_name!r} has no result backend (its result_backend setting is empty)")
    return celery_app.backend
