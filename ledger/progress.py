"""Progress of long work (replay, rebuild, demo, benchmark): a real progress bar in a
terminal, a plain line every few seconds when the output is a file or a pipe."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress


class Progress:
    """``start(total)``, ``update(done)`` any number of times, ``finish()``."""

    def __init__(
        self, label: str, *, quiet: bool = False, every_s: float = 5.0, console: Console | None = None
    ) -> None:
        self.label, self.quiet, self.every_s = label, quiet, every_s
        self.console = console or Console(stderr=True)
        self._bar: RichProgress | None = None
        self._task: TaskID | None = None
        self._total = self._done = 0
        self._started = self._last_line = 0.0

    def start(self, total: int) -> None:
        self._total, self._done = total, 0
        self._started = self._last_line = time.monotonic()
        if self.quiet:
            return
        if self.console.is_terminal and self._bar is None:
            self._bar = RichProgress(TextColumn(f"{self.label:<8}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                                     console=self.console, transient=False)  # fmt: skip
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=total, rate="")
        elif self._bar is not None and self._task is not None:
            self._bar.update(self._task, total=total)

    def rate(self) -> float:
        return self._done / max(time.monotonic() - self._started, 1e-9)

    def update(self, done: int) -> None:
        self._done = done
        if self.quiet:
            return
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done, rate=f"{self.rate():,.0f} ev/s")
        elif time.monotonic() - self._last_line >= self.every_s:
            self._last_line = time.monotonic()
            self._line()

    def _line(self) -> None:
        rate = self.rate()
        left = max(self._total - self._done, 0)
        eta = f"{left / rate:,.0f}s" if rate > 0 else "?"
        share = 100 * self._done / self._total if self._total else 100.0
        print(f"{self.label}: {self._done:,}/{self._total:,} events ({share:.1f}%), {rate:,.0f} ev/s, ETA {eta}",
              file=sys.stderr, flush=True)  # fmt: skip

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        elif not self.quiet:
            self._line()
