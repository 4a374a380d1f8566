"""``ledger ingest celery``: a Celery fleet's own events into the ledger, no code change."""

from __future__ import annotations

import threading
from typing import Annotated

import typer

from ledger.cli.base import CliError, announce, app, parse_duration, run, settings

ingest = typer.Typer(no_args_is_help=True, help="Read a task queue's own event stream into the ledger.")
app.add_typer(ingest, name="ingest")
APP = "a Celery app (as celery -A takes it): its broker when --broker is omitted"
EXPIRES = "RabbitMQ: how long events wait for an absent ingester, e.g. 12h (default LEDGER_INGEST_EXPIRES_S)"


@ingest.command("celery")
def celery(
    broker: Annotated[str | None, typer.Option(help="the broker: amqp://… (RabbitMQ) or redis://…")] = None,
    celery_app: Annotated[str | None, typer.Option("--app", help=APP)] = None,
    queue: Annotated[str | None, typer.Option(help="the ingester's queue (default LEDGER_INGEST_QUEUE)")] = None,
    expires: Annotated[str | None, typer.Option(help=EXPIRES)] = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="events appended, then acknowledged, at a time")] = 500,
) -> None:
    """Read the events Celery's workers publish (worker -E, task_send_sent_event) and
    append each task transition and worker event to the ledger. RabbitMQ: a durable queue, acknowledged only
    after the log has the events, so a crash loses nothing. Redis: nothing is kept while
    the ingester is away. SIGTERM / Ctrl-C stop it cleanly."""

    def go() -> None:
        try:
            from ledger.consumers.celery_broker import BrokerRefused, redact
            from ledger.consumers.runner import install_stop_signals
            from ledger.contrib.celery_ingest import app_result_backend, run_ingest, source_config
        except ImportError as exc:
            raise CliError(f"ledger ingest celery needs kombu: pip install 'task-ledger[celery]' ({exc})") from None
        config = settings()
        expires_s = parse_duration(expires, "--expires").total_seconds() if expires is not None else None
        source = source_config(config, broker=broker, app=celery_app, queue=queue, expires_s=expires_s,
                               prefetch=2 * batch)  # fmt: skip
        announce("ingest celery", config, f"; reading {redact(source.url)}")
        stop = threading.Event()
        install_stop_signals(stop)
        try:
            stats = run_ingest(config, source, stop, batch_size=batch, result_backend=app_result_backend(celery_app))
        except BrokerRefused as exc:
            raise CliError(str(exc)) from None
        typer.echo(f"ledger ingest celery: stopped after {stats.events:,} events "
                   f"({stats.dead_letters:,} dead letters, {stats.skipped:,} skipped)", err=True)  # fmt: skip

    run(go)
