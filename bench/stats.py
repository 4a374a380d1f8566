"""Small measuring helpers shared by the phases."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..100) of ``values``; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(share / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds of durations given in seconds."""
    return {
        "p50_ms": round(percentile(seconds, 50) * 1000, 3),
        "p95_ms": round(percentile(seconds, 95) * 1000, 3),
        "p99_ms": round(percentile(seconds, 99) * 1000, 3),
        "max_ms": round(max(seconds, default=0.0) * 1000, 3),
    }


def timed(call: Callable[[T], object], items: Sequence[T], warm_up: int,
          on_each: Callable[[int], None] | None = None) -> list[float]:  # fmt: skip
    """Seconds of ``call(item)`` for each of ``items``, after untimed calls on the first
    ``warm_up`` of them (caches and plans warm); ``on_each(n)`` after the n-th timed call."""
    for item in items[:warm_up]:
        call(item)
    durations = []
    for index, item in enumerate(items):
        began = time.perf_counter()
        call(item)
        durations.append(time.perf_counter() - began)
        if on_each is not None:
            on_each(index + 1)
    return durations


def repeated(call: Callable[[], object], samples: int, warm_up: int) -> list[float]:
    """Seconds of ``samples`` calls of ``call``, after ``warm_up`` untimed ones."""
    return timed(lambda _: call(), range(max(samples, warm_up)), warm_up)[:samples]


def rate(count: int, seconds: float) -> float:
    """Events per second, rounded; guards a zero duration (a tiny run on a fast machine)."""
    return round(count / max(seconds, 1e-9), 1)


class Stopwatch:
    """Accumulates only the timed sections (``with watch:``), so set-up is never counted."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._began = 0.0

    def __enter__(self) -> Stopwatch:
        self._began = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds += time.perf_counter() - self._began
