"""The bench waits for a quiet machine and flags a run that starts busy anyway."""

from __future__ import annotations

from bench.quiet import wait_until_quiet


def test_a_quiet_machine_starts_at_once() -> None:
    slept: list[float] = []
    quiet = wait_until_quiet(60, cores=2, load=lambda: 0.4, sleep=slept.append)
    assert (quiet.busy, quiet.waited_s, slept) == (False, 0.0, [])


def test_a_busy_machine_is_waited_for_until_it_settles() -> None:
    loads, slept = iter([3.0, 2.0, 0.9]), []
    quiet = wait_until_quiet(60, cores=2, load=lambda: next(loads), sleep=slept.append)
    assert not quiet.busy and quiet.load_1m == 0.9 and quiet.waited_s == 10.0 and len(slept) == 2


def test_a_machine_busy_past_the_wait_is_flagged() -> None:
    quiet = wait_until_quiet(20, cores=2, load=lambda: 3.5, sleep=lambda s: None)
    assert quiet.busy and quiet.waited_s == 20.0
    assert quiet.as_dict() == {"load_1m": 3.5, "busy_limit": 1.0, "waited_s": 20.0, "busy": True}
