"""``ledger …`` as a user runs it, run inside the test process.

A command that only prints and exits is run here, not in a child Python (~1 s of start-up
and imports per call, hundreds of calls in the suite). What the user would see is kept:
the same entry point (``ledger.cli.main``: its usage-error rule and exit codes), stdout and
stderr apart, only the given ``LEDGER_*`` variables, the working directory, a temporary
directory taken from ``TMPDIR``, Python's default warning filters, an uncaught exception as
the interpreter prints it (a traceback, exit code 1), and logging and signal handlers as a
fresh process has them. A command that leaves a non-daemon thread behind fails the test: a
process would not have exited. Behaviour of the process itself (signals, ``serve``,
``project`` running until stopped, crashes) stays in real subprocesses (``python -m ledger``).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import threading
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from ledger.cli import main
from ledger.projections import sqlite_files

ROOT = Path(__file__).resolve().parents[1]
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class Done:
    """What a finished ``ledger`` command left: the fields of ``subprocess.CompletedProcess``
    the tests read."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def ledger(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Done:
    """Run ``ledger ARGS`` with only ``env``'s ``LEDGER_*`` settings, in ``cwd`` (the repo root)."""
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("LEDGER_")}
    before, locks = set(threading.enumerate()), set(sqlite_files._held)
    with CliRunner().isolation(env={**unset, **(env or {})}) as (out, err, _), _fresh_process(cwd or ROOT):
        code = _exit_code(args)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode("utf-8", "backslashreplace")
    _no_thread_left(before, args)
    leaked = set(sqlite_files._held) - locks
    assert not leaked, f"ledger {' '.join(args)} left the writer lock of {leaked} held: a process would drop it at exit"
    return Done(args, code, stdout, stderr)


def _exit_code(args: tuple[str, ...]) -> int:
    """The exit status the interpreter would give: ``sys.exit``'s code, or 1 with the
    traceback on stderr for an exception nobody caught."""
    try:
        main(list(args))
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or 0
        print(stop.code, file=sys.stderr)
        return 1
    except BaseException:  # what an uncaught one looks like to the user
        traceback.print_exc()
        return 1
    return 0


@contextmanager
def _fresh_process(cwd: Path) -> Iterator[None]:
    """The process-wide state a new interpreter starts with, restored afterwards."""
    old_cwd, old_tempdir = Path.cwd(), tempfile.tempdir
    old_signals = {signum: signal.getsignal(signum) for signum in _SIGNALS}
    root, ours = logging.getLogger(), logging.getLogger("ledger")
    old_root = (root.handlers[:], root.level)
    old_ours = (ours.handlers[:], ours.level, ours.propagate)
    os.chdir(cwd)
    tempfile.tempdir = None  # found again from TMPDIR, as at start-up
    root.handlers, ours.handlers = [], []  # no handler yet: warnings go to stderr (logging.lastResort)
    root.setLevel(logging.WARNING)
    ours.setLevel(logging.NOTSET)
    ours.propagate = True
    try:
        with warnings.catch_warnings():
            _default_warning_filters()
            yield
    finally:
        os.chdir(old_cwd)
        tempfile.tempdir = old_tempdir
        for signum, handler in old_signals.items():
            signal.signal(signum, handler)
        root.handlers, ours.handlers = old_root[0], old_ours[0]
        root.setLevel(old_root[1])
        ours.setLevel(old_ours[1])
        ours.propagate = old_ours[2]


def _default_warning_filters() -> None:
    """Python's filters for a script (not pytest's), printed to stderr as it prints them."""
    warnings.resetwarnings()
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.filterwarnings("ignore", category=category, append=True)
    warnings.showwarning = _print_warning


def _print_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file: object = None,
    line: str | None = None,
) -> None:  # fmt: skip
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _no_thread_left(before: set[threading.Thread], args: tuple[str, ...]) -> None:
    """A non-daemon thread still running would keep a real process from exiting."""
    for thread in set(threading.enumerate()) - before:
        if not thread.daemon:
            thread.join(timeout=10)
            assert not thread.is_alive(), f"ledger {' '.join(args)} left thread {thread.name} running"


__all__ = ["ROOT", "Done", "ledger"]
