"""The simulated fleet the demo and the benchmark run."""

from __future__ import annotations

from datetime import UTC, datetime

from ledger.simulate import simulate


def test_no_simulated_event_is_dated_in_the_future() -> None:
    # 80 runs of a periodic task every 3 minutes span four hours: more than the hour before
    # now the simulation used to start at (as 50,000 tasks at ten a second do)
    events = simulate(10, seed=3, periodic=3, periodic_runs=80)
    assert max(event.occurred_at for event in events) <= datetime.now(UTC)


def test_a_given_start_is_kept() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    assert min(event.occurred_at for event in simulate(5, seed=1, start=start)) == start
