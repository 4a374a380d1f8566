"""What every ``ledger`` command shares: the Typer app, settings loading, argument parsing
and the rule that errors are one clear line on stderr with exit code 1, never a traceback.

Built on Typer (Click underneath): typed options, help and shell completion for free.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import typer
from pydantic import TypeAdapter, ValidationError

from ledger import bootstrap, logs
from ledger.domain.fields import Identifier
from ledger.eventlog.base import AppendError, EventLogUnavailable
from ledger.projections.rebuild import RebuildInProgress
from ledger.projections.store import ViewStoreUnavailable
from ledger.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,  # usage errors as plain "Error: …" lines, not boxes
    help="Task Ledger: the history of every task.",
)
T = TypeVar("T")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_IDENTIFIER: TypeAdapter[str] = TypeAdapter(Identifier)
MAX_DURATION = timedelta(days=36525)
"""Longer has no meaning for task history, and "that long ago" must stay a valid date."""


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 1."""


USER_ERRORS = (
    CliError, SettingsError, EventLogUnavailable, ViewStoreUnavailable, RebuildInProgress, AppendError, ValueError,
)  # fmt: skip


def parse_duration(text: str, option: str) -> timedelta:
    """'90s', '15m', '1h', '7d', '2w' (up to 100 years) → timedelta; anything else, the empty
    string included, is a ``CliError`` naming the option and the rule."""
    match = _DURATION.match(text.strip())
    if not match:
        raise CliError(f"{option}: {text!r} is not a duration like 90s, 15m, 1h, 7d or 2w")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_DURATION.total_seconds():
        raise CliError(f"{option}: {text!r} is longer than the longest duration, 100 years ({MAX_DURATION.days}d)")
    return timedelta(seconds=seconds)


def parse_moment(text: str, option: str) -> datetime:
    """An ISO 8601 time with a timezone, or a duration meaning that long ago ('2h'), in UTC."""
    if _DURATION.match(text.strip()):
        return datetime.now(UTC) - parse_duration(text, option)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"{option}: {text!r} is neither an ISO 8601 time nor a duration like 2h") from None
    if moment.tzinfo is None:
        raise CliError(f"{option}: {text!r} has no timezone (add Z or +00:00)")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise CliError(f"{option}: {text!r} is out of range (years 1 to 9999, in UTC)") from None


def parse_identifier(value: str | None, option: str) -> str | None:
    """A task id, task name or worker name by the domain's rule for them (the SDK's and the
    HTTP API's too): 1 to 255 characters, not blank, no NUL."""
    if value is None:
        return None
    try:
        return _IDENTIFIER.validate_python(value)
    except ValidationError as exc:
        raise CliError(f"{option}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None


@contextmanager
def failures_as_one_line() -> Iterator[None]:
    try:
        yield
    except USER_ERRORS as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def settings() -> Settings:
    loaded = load_settings()
    logs.configure(loaded.log_level, loaded.log_format)
    return loaded


def announce(command: str, config: Settings, detail: str = "") -> None:
    """The start-up line of a long-running command, on stderr: which ledger it uses."""
    typer.echo(f"ledger {command}: {bootstrap.place(config)}{detail}", err=True)


def run(command: Callable[[], T]) -> T:
    with failures_as_one_line():
        return command()
