"""The one retry policy: delays grow, are capped, carry jitter, and a wait ends when asked."""

from __future__ import annotations

import logging
import random
import threading

import pytest

from ledger.retry import BACKEND, Backoff, RetryPolicy, keep_trying

log = logging.getLogger("tests.retry")
FAST = RetryPolicy(first_s=0.001, cap_s=0.004)


def test_delays_grow_by_the_factor_until_the_cap() -> None:
    policy = RetryPolicy(first_s=0.2, factor=2, cap_s=5, jitter=0.5)
    ceilings = [policy.delay(n, rng=lambda: 0.0) for n in range(1, 9)]
    assert ceilings == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 5, 5, 5])
    assert policy.delay(10_000, rng=lambda: 0.0) == 5  # no overflow, however long the outage


def test_jitter_spreads_each_delay_below_its_ceiling() -> None:
    rng = random.Random(13).random
    for attempt in (1, 3, 8):
        top = BACKEND.ceiling(attempt)
        drawn = [BACKEND.delay(attempt, rng) for _ in range(200)]
        assert all((1 - BACKEND.jitter) * top <= d <= top for d in drawn)
        assert len({round(d, 6) for d in drawn}) > 100  # spread out, not one value
    assert BACKEND.delay(1, rng=lambda: 0.999_999) == pytest.approx(BACKEND.ceiling(1) * (1 - BACKEND.jitter), abs=1e-6)


def test_every_delay_is_capped() -> None:
    rng = random.Random(5).random
    assert max(BACKEND.delay(n, rng) for n in range(1, 500)) <= BACKEND.cap_s


@pytest.mark.parametrize(
    "bad", [{"first_s": 0}, {"factor": 0.5}, {"first_s": 2, "cap_s": 1}, {"jitter": 1.5}]
)
def test_a_policy_that_makes_no_sense_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="retry policy"):
        RetryPolicy(**bad)


def test_a_backoff_counts_failures_in_a_row_until_told_it_succeeded() -> None:
    backoff = Backoff("away", log, RetryPolicy(first_s=60, cap_s=60), rng=lambda: 0.0)
    assert backoff.due()
    assert backoff.failed(RuntimeError("x")) == 60
    assert (backoff.attempt, backoff.due()) == (1, False)  # the next try is a minute away
    backoff.failed(RuntimeError("again"))
    assert backoff.attempt == 2
    backoff.succeeded()
    assert (backoff.attempt, backoff.due()) == (0, True)


def test_a_wait_ends_when_stop_is_set() -> None:
    backoff = Backoff("away", log, RetryPolicy(first_s=3600, cap_s=3600))
    backoff.failed(RuntimeError("down for an hour"))
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    assert backoff.wait(stop) is False  # returned when stopped, not after the hour
    assert backoff.wait(stop) is False  # already stopped: at once


def test_keep_trying_waits_out_transient_failures_then_returns() -> None:
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) < 4:
            raise ConnectionError("not yet")

    backoff = Backoff("away", log, FAST)
    assert keep_trying(flaky, backoff, (ConnectionError,)) is True
    assert len(calls) == 4 and backoff.attempt == 3  # the caller decides when the outage is over


def test_keep_trying_gives_up_when_stopped_and_lets_other_errors_through() -> None:
    stop = threading.Event()

    def never() -> None:
        stop.set()
        raise ConnectionError("down")

    assert keep_trying(never, Backoff("away", log, FAST), (ConnectionError,), stop) is False

    def broken() -> None:
        raise KeyError("a bug, not an outage")

    with pytest.raises(KeyError):
        keep_trying(broken, Backoff("away", log, FAST), (ConnectionError,))


def test_each_failure_is_logged_with_its_attempt_and_delay(caplog: pytest.LogCaptureFixture) -> None:
    backoff = Backoff("backend failed, retrying", log, FAST)
    with caplog.at_level(logging.WARNING, logger="tests.retry"):
        backoff.failed(ConnectionError("refused"))
    [record] = caplog.records
    assert record.getMessage() == "backend failed, retrying"
    assert (record.attempt, record.error) == (1, "refused")  # type: ignore[attr-defined]
