"""``ledger import …``: bring an existing task history into the ledger."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ledger.bootstrap import build_ledger
from ledger.cli.base import CliError, app, run, settings
from ledger.progress import Progress

imports = typer.Typer(no_args_is_help=True, help="Import an existing task history.")
app.add_typer(imports, name="import")


@imports.command("celery-events")
def celery_events(
    path: Annotated[str, typer.Argument(help="JSON lines, one Celery event dict a line ('-': stdin)")],
    batch: Annotated[int, typer.Option(min=1, max=100_000, help="events appended at a time")] = 1000,
) -> None:
    """Append Celery's own task and worker events (task-sent, task-received, …,
    worker-heartbeat, … as celery.events delivers them), captured as JSON lines: attempts,
    ids, workers and times as the ledger records them. Importing the same file twice is
    harmless (the same events have the same ids)."""
    from ledger.contrib.celery_events import import_celery_events

    def go() -> None:
        if path != "-" and not Path(path).is_file():
            raise CliError(f"PATH: {path!r} is not a file")
        total = 0 if path == "-" else _lines(Path(path))
        progress = Progress("import")
        progress.start(total)
        ledger = build_ledger(settings())
        with ledger, (sys.stdin if path == "-" else open(path, encoding="utf-8")) as lines:
            done = import_celery_events(lines, ledger, batch=batch, on_progress=progress.update)
        progress.finish()
        skipped = f"{done.skipped:,} lines were neither task transitions nor worker events"
        typer.echo(f"imported {done.events:,} events ({skipped})")

    run(go)


def _lines(path: Path) -> int:
    """How many lines the file has: the progress bar's total."""
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
