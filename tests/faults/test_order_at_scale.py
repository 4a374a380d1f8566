"""Out-of-order delivery and duplicates at scale (hypothesis): random interleavings,
duplicate appends and clock skew across many tasks give views equal to the domain fold."""

from __future__ import annotations

import random
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.bootstrap import build_event_log, build_view_writer
from ledger.domain.events import AnyEvent
from ledger.settings import load_settings
from ledger.simulate import simulate
from tests.streams import append_all, assert_views_match_fold, project_all

pytestmark = pytest.mark.faults


def disorder(events: list[AnyEvent], seed: int, duplicates: int, skew_ms: int) -> list[AnyEvent]:
    """Shuffle everything (per-task order too), append duplicates, and skew some clocks."""
    rng = random.Random(seed)
    skewed = [
        e.model_copy(update={"occurred_at": e.occurred_at + timedelta(milliseconds=rng.randint(-skew_ms, skew_ms))})
        if skew_ms and rng.random() < 0.2 else e
        for e in events
    ]  # fmt: skip
    rng.shuffle(skewed)
    return skewed + [rng.choice(skewed) for _ in range(duplicates)]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    tasks=st.integers(20, 300),
    duplicates=st.integers(0, 200),
    skew_ms=st.sampled_from([0, 5, 500, 60_000]),
    batch=st.sampled_from([1, 7, 100, 5000]),
)
def test_any_interleaving_duplication_and_skew_projects_to_the_fold(
    seed: int, tasks: int, duplicates: int, skew_ms: int, batch: int
) -> None:
    events = disorder(simulate(tasks, seed=seed, periodic=2, periodic_runs=3), seed, duplicates, skew_ms)
    with tempfile.TemporaryDirectory() as folder:
        config = load_settings(backend="embedded", data_dir=Path(folder), partitions=3, projector_batch_size=batch,
                               projector_batch_wait_ms=0, consumer_poll_timeout_ms=20)  # fmt: skip
        log = build_event_log(config)
        positions = append_all(log, events, chunk=997)
        project_all(config)
        store = build_view_writer(config)
        assert_views_match_fold(store, events, positions)
        store.close()
        log.close()
