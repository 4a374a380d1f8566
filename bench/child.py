"""A projector (or a rebuild) in its own process, so its memory can be measured alone.

``python -m bench.child project|replay|follow`` with this run's ``LEDGER_*`` in the
environment. It writes one JSON line per progress report on stdout (events applied so
far and its RSS), ``{"ready": …}`` once caught up in ``follow`` mode (which then keeps
projecting until SIGTERM), and a final ``{"done": …}`` line.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time

from bench.rss import peak_rss, rss
from ledger.bootstrap import build_projector, build_rebuild
from ledger.progress import Progress
from ledger.settings import load_settings

REPORT_EVERY_S = 0.25


def say(**fields: object) -> None:
    fields["rss"], fields["peak_rss"] = rss(), peak_rss()
    print(json.dumps(fields), flush=True)


class Reporter:
    """Progress lines, at most every ``REPORT_EVERY_S`` seconds."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, events: int) -> None:
        now = time.monotonic()
        if now - self.last >= REPORT_EVERY_S:
            self.last = now
            say(events=events)


class LineProgress(Progress):
    """The rebuild's own progress calls, turned into JSON lines."""

    def __init__(self, report: Reporter) -> None:
        super().__init__("replay", quiet=True)
        self.report = report

    def update(self, done: int) -> None:
        super().update(done)
        self.report(done)


def project(follow: bool) -> None:
    settings = load_settings()
    projector = build_projector(settings)
    report = Reporter()
    projector.on_commit = lambda stats: report(stats.events + stats.dead_letters)
    started = time.perf_counter()
    stats = projector.run_until_caught_up()
    seconds = time.perf_counter() - started
    if follow:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        say(ready=True, events=stats.events)
        projector.run(stop)
    projector.close()
    projector.store.close()
    say(done=True, events=stats.events, dead_letters=stats.dead_letters, batches=stats.batches,
        seconds=seconds, maxrss=peak_rss())  # fmt: skip


def replay() -> None:
    rebuild = build_rebuild(load_settings(), progress=LineProgress(Reporter()))
    result = rebuild.run()
    say(done=True, events=result.events, seconds=result.seconds, swapped=result.swapped,
        maxrss=peak_rss())  # fmt: skip


def main(argv: list[str]) -> None:
    mode = argv[0] if argv else ""
    if mode == "replay":
        replay()
    elif mode in ("project", "follow"):
        project(follow=mode == "follow")
    else:
        raise SystemExit("usage: python -m bench.child project|replay|follow")


if __name__ == "__main__":
    main(sys.argv[1:])
