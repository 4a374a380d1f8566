"""``ledger …``: the command line. Commands translate arguments and delegate; errors are one
clear line on stderr and a non-zero exit code, never a traceback."""

import sys

import typer

from ledger.cli import (  # noqa: F401  (each registers commands)
    alerts,
    failures,
    imports,
    ingest,
    ops,
    reconcile,
    streams,
    views,
    workers,
    workflow,
)
from ledger.cli.base import app

UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
"""Click's usage error (Typer vendors Click in recent versions: found from the public name)."""


def main(args: list[str] | None = None) -> None:
    """Run ``ledger``. A usage error (an unknown option, a value out of range or of the wrong
    type, a missing argument) follows the commands' rule for every option of every command:
    one line naming the option and the rule, exit code 1, not Click's usage box and code 2."""
    try:
        code = app(args=args, prog_name="ledger", standalone_mode=False)
    except UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare ``ledger`` (or group): the help
            typer.echo(exc.format_message(), err=True)  # type: ignore[attr-defined]
            sys.exit(2)
        typer.echo(f"error: {' '.join(exc.format_message().split())}", err=True)  # type: ignore[attr-defined]
        code = 1
    except typer.Abort:  # Ctrl-C at a prompt
        typer.echo("error: aborted", err=True)
        code = 1
    sys.exit(code if isinstance(code, int) else 0)
