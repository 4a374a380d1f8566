"""``ledger failures``: failures grouped by root cause (list, show one, resolve or reopen one)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from ledger import render
from ledger.bootstrap import build_failure_queries, build_ledger
from ledger.cli.base import CliError, app, parse_identifier, parse_moment, run, settings
from ledger.domain.failures import is_fingerprint

failures = typer.Typer(help="Failures grouped by root cause (task name, exception type, masked message).")
app.add_typer(failures, name="failures")
JsonFlag = Annotated[bool, typer.Option("--json", help="JSON output for scripts")]
Since = Annotated[str | None, typer.Option(help="failures since (e.g. 1h, or an ISO 8601 time)")]
Until = Annotated[str | None, typer.Option(help="failures before (e.g. 10m, or an ISO 8601 time)")]
Buckets = Annotated[int, typer.Option(min=1, max=1000, help="trend buckets over the window")]


def _moment(text: str | None, option: str) -> datetime | None:
    return parse_moment(text, option) if text is not None else None


def _fingerprint(text: str) -> str:
    if not is_fingerprint(text):
        raise CliError(f"FINGERPRINT: must be 16 lowercase hex digits (as `ledger failures` prints), got {text!r}")
    return text


@failures.callback(invoke_without_command=True)
def failures_list(
    ctx: typer.Context,
    since: Since = None,
    until: Until = None,
    name: Annotated[str | None, typer.Option(help="task name")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    buckets: Buckets = 12,
    as_json: JsonFlag = False,
) -> None:
    """The failure groups of a window, the most recently failing first."""
    if ctx.invoked_subcommand is not None:
        return

    def go() -> None:
        groups = build_failure_queries(settings()).groups(
            since=_moment(since, "--since"), until=_moment(until, "--until"), name=parse_identifier(name, "--name"),
            limit=limit, buckets=buckets,
        )  # fmt: skip
        if as_json:
            typer.echo(render.as_json(groups))
        else:
            render.console().print(render.failures_table(groups, f"{len(groups)} failure groups"))

    run(go)


@failures.command("show")
def failures_show(fingerprint: str, since: Since = None, until: Until = None, buckets: Buckets = 12,
                  as_json: JsonFlag = False) -> None:  # fmt: skip
    """One failure group: its counts, trend and example task ids."""

    def go() -> None:
        group = build_failure_queries(settings()).group(
            _fingerprint(fingerprint), since=_moment(since, "--since"), until=_moment(until, "--until"), buckets=buckets
        )
        if group is None:
            raise CliError(f"unknown failure group {fingerprint!r}: no failure of it" + (" in that window" if since
                           or until else ""))  # fmt: skip
        if as_json:
            typer.echo(render.as_json(group))
            return
        render.console().print(render.failures_table([group], f"Failure group {fingerprint}"))
        typer.echo(f"examples: {' '.join(group.examples)}")

    run(go)


@failures.command("resolve")
def failures_resolve(
    fingerprint: str,
    by: Annotated[str | None, typer.Option(help="who resolved it (recorded in the event)")] = None,
    note: Annotated[str | None, typer.Option(help="why, or what fixed it")] = None,
) -> None:
    """Mark a group resolved (an event in the log); a later failure of it reopens it."""

    def go() -> None:
        with build_ledger(settings()) as ledger:
            ledger.resolve_failure_group(_fingerprint(fingerprint), resolved_by=by, note=note)
        typer.echo(f"resolved {fingerprint}: a failure of it from now on reopens it")

    run(go)


@failures.command("reopen")
def failures_reopen(
    fingerprint: str,
    by: Annotated[str | None, typer.Option(help="who reopened it (recorded in the event)")] = None,
    note: Annotated[str | None, typer.Option(help="why: the fix did not hold, say")] = None,
) -> None:
    """Reopen a resolved group (an event in the log) without waiting for its next failure."""

    def go() -> None:
        with build_ledger(settings()) as ledger:
            ledger.reopen_failure_group(_fingerprint(fingerprint), reopened_by=by, note=note)
        typer.echo(f"reopened {fingerprint}")

    run(go)
