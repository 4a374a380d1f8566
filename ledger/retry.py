"""One retry policy for every loop that waits out a backend (a broker restart, a database
failover, a lost connection).

Delays grow exponentially up to a cap, so a long outage costs one try every few seconds and
not a tight loop; each delay is drawn with jitter, so the projectors and subscribers that
lost the same server do not all come back at the same instant. The attempt count lives in
a ``Backoff`` the loop keeps until a try succeeds: a loop whose backend answers once and
fails again goes on waiting longer instead of starting again from the shortest delay.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BACKEND", "Backoff", "RetryPolicy", "keep_trying"]

Random = Callable[[], float]
"""A source of uniform numbers in [0, 1): ``random.random``, or a fixed one in tests."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Delay ``n`` (after the ``n``-th failure in a row) is drawn uniformly from
    ``[(1 - jitter) * c, c]`` where ``c = min(cap_s, first_s * factor ** (n - 1))``."""

    first_s: float = 0.2
    factor: float = 2.0
    cap_s: float = 5.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.first_s <= 0 or self.factor < 1 or self.cap_s < self.first_s or not 0 <= self.jitter <= 1:
            raise ValueError(f"a retry policy needs 0 < first_s <= cap_s, factor >= 1, 0 <= jitter <= 1: {self}")

    def ceiling(self, attempt: int) -> float:
        """The longest delay after failure number ``attempt`` (1 for the first)."""
        exponent = min(max(attempt - 1, 0), 64)  # past the cap long before: no float overflow
        return min(self.cap_s, self.first_s * self.factor**exponent)

    def delay(self, attempt: int, rng: Random = random.random) -> float:
        return self.ceiling(attempt) * (1 - self.jitter * rng())


BACKEND = RetryPolicy()
"""The policy of every wait for a backend: 0.1 to 0.2 s first, at most 5 s, half of it jitter."""


class Backoff:
    """The failures in a row of one loop: counts them, logs each with its delay (on the
    loop's own logger, under the loop's own message), and knows when the next try is due."""

    def __init__(self, what: str, logger: logging.Logger, policy: RetryPolicy = BACKEND,
                 rng: Random = random.random) -> None:  # fmt: skip
        self.what, self.logger, self.policy, self._rng = what, logger, policy, rng
        self.attempt = 0
        self._due = 0.0

    def failed(self, exc: BaseException) -> float:
        """Count a failure; returns the delay before the next try is due."""
        self.attempt += 1
        delay = self.policy.delay(self.attempt, self._rng)
        self._due = time.monotonic() + delay
        self.logger.warning(self.what, extra={"error": str(exc), "attempt": self.attempt, "delay": round(delay, 3)})
        return delay

    def succeeded(self) -> None:
        """The backend answered: the next failure waits the shortest delay again."""
        self.attempt, self._due = 0, 0.0

    def due(self) -> bool:
        """Whether the next try may be made now (never blocks)."""
        return time.monotonic() >= self._due

    def wait(self, stop: threading.Event | None = None) -> bool:
        """Sleep until the next try is due; returns False at once when ``stop`` is set."""
        left = max(0.0, self._due - time.monotonic())
        if stop is None:
            time.sleep(left)
            return True
        return not stop.wait(left)


def keep_trying(call: Callable[[], object], backoff: Backoff, transient: tuple[type[BaseException], ...],
                stop: threading.Event | None = None) -> bool:  # fmt: skip
    """Call ``call`` until it returns (True), waiting out the ``transient`` failures with
    ``backoff``; False when ``stop`` is set first. Any other exception propagates. The
    failure count is left as it is: the caller knows when the outage is over."""
    while stop is None or not stop.is_set():
        try:
            call()
        except transient as exc:
            backoff.failed(exc)
            if not backoff.wait(stop):
                return False
        else:
            return True
    return False
