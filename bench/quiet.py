"""The machine must be quiet before a run: ratios of one run hold on a noisy machine, but a
run that starts while something else loads the cores measures that something too, and its
figures cannot be compared with another run's. So the run waits (a while) for the load to
settle, and a run that starts busy anyway says so, in the table and in its JSON."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

BUSY_PER_CORE = 0.5
"""A 1-minute load average above this share of the cores counts as busy."""


@dataclass(frozen=True)
class Quiet:
    load_1m: float
    limit: float
    waited_s: float

    @property
    def busy(self) -> bool:
        return self.load_1m > self.limit

    def as_dict(self) -> dict[str, object]:
        return {"load_1m": round(self.load_1m, 2), "busy_limit": self.limit, "waited_s": round(self.waited_s, 1),
                "busy": self.busy}  # fmt: skip


def wait_until_quiet(max_wait_s: float, *, cores: int | None = None, load: Callable[[], float] | None = None,
                     sleep: Callable[[float], None] = time.sleep, every_s: float = 5.0) -> Quiet:  # fmt: skip
    """Wait up to ``max_wait_s`` for the 1-minute load to fall to ``BUSY_PER_CORE`` per core."""
    read = load or (lambda: os.getloadavg()[0])
    limit = round(BUSY_PER_CORE * (cores or os.cpu_count() or 1), 2)
    waited, now = 0.0, read()
    while now > limit and waited < max_wait_s:
        sleep(every_s)
        waited += every_s
        now = read()
    return Quiet(now, limit, waited)
