"""Runs ``bench.child`` in a child process: follows its progress lines, samples its RSS
from /proc, and says whether the RSS stayed flat (after 25 % vs 100 % of the events)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from bench.rss import peak_rss
from bench.runctx import BenchRun
from ledger.progress import Progress

FLAT_GROWTH = 0.10
"""RSS counts as flat when it grew by at most 10 % between 25 % and 100 % of the events."""


@dataclass
class ChildRun:
    """What a child reported, plus its memory as seen from outside."""

    done: dict[str, Any] = field(default_factory=dict)
    peak_rss: int = 0
    rss_25: int = 0
    rss_100: int = 0

    def memory(self) -> dict[str, Any]:
        growth = (self.rss_100 - self.rss_25) / self.rss_25 if self.rss_25 else 0.0
        return {"peak_rss_mb": _mb(max(self.peak_rss, self.done.get("maxrss", 0))), "rss_25_mb": _mb(self.rss_25),
                "rss_100_mb": _mb(self.rss_100), "growth_25_to_100": round(growth, 3),
                "flat": growth <= FLAT_GROWTH}  # fmt: skip


def _mb(value: int) -> float:
    return round(value / (1 << 20), 1)


class Child:
    """One ``python -m bench.child MODE`` process."""

    def __init__(self, run: BenchRun, mode: str, total: int, label: str, env: dict[str, str] | None = None) -> None:
        self.total, self.result = total, ChildRun()
        self.progress = Progress(label)
        command = [sys.executable, "-m", "bench.child", mode]
        environment = {**run.child_env(), **(env or {})}
        self.proc = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, text=True)
        self._stop_sampling = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop_sampling.wait(0.1):
            self.result.peak_rss = max(self.result.peak_rss, peak_rss(self.proc.pid))

    def lines(self) -> Any:
        """Yield each JSON line; track progress and the RSS milestones on the way."""
        assert self.proc.stdout is not None
        self.progress.start(self.total)
        for line in self.proc.stdout:
            message = json.loads(line)
            events = int(message.get("events", 0))
            if not self.result.rss_25 and events >= self.total * 0.25:
                self.result.rss_25 = message["rss"]
            self.progress.update(events)
            if message.get("done"):
                self.result.done, self.result.rss_100 = message, message["rss"]
            yield message

    def wait_ready(self, lines: Any) -> None:
        """Consume ``lines`` up to the child's ``ready`` line (follow mode)."""
        for message in lines:
            if message.get("ready"):
                return
        raise RuntimeError(f"bench child {self.proc.args} exited before it was ready (exit code {self.proc.wait()})")

    def wait(self) -> ChildRun:
        """Read until the child exits; fail loudly if it did not report ``done``."""
        for _ in self.lines():
            pass
        return self.finish()

    def finish(self) -> ChildRun:
        code = self.proc.wait()
        self._stop_sampling.set()
        self.progress.finish()
        if code != 0 or not self.result.done:
            raise RuntimeError(f"bench child {self.proc.args} failed (exit code {code})")
        return self.result

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            deadline = time.monotonic() + 5
            while self.proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
