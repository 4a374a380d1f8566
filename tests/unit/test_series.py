"""Trends' pure rules: bucket widths, the axis of whole buckets, nearest-rank percentiles
and how (bucket, status, count) rows become points."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from ledger.domain.series import (
    MAX_BUCKETS,
    Percentiles,
    axis,
    bucket_width,
    build_points,
    nearest_rank,
    percentile,
    percentiles,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_bucket_widths_and_a_bad_bucket_names_the_option_and_the_choices() -> None:
    assert [bucket_width(b) for b in ("1m", "5m", "15m", "1h", "6h", "1d")] == [60, 300, 900, 3600, 21600, 86400]
    with pytest.raises(ValueError, match=r"^bucket: must be one of 1m, 5m, 15m, 1h, 6h, 1d, got '2m'$"):
        bucket_width("2m")


def test_the_axis_covers_whole_buckets_aligned_to_the_epoch() -> None:
    window = axis(300, T0 + timedelta(minutes=7, seconds=3), T0 + timedelta(minutes=20))
    assert (window.start, window.end, window.count) == (T0 + timedelta(minutes=5), T0 + timedelta(minutes=20), 3)
    assert window.starts() == [T0 + timedelta(minutes=m) for m in (5, 10, 15)]
    # an instant just past a bucket's start opens that bucket; until is exclusive
    assert axis(60, T0, T0 + timedelta(minutes=1, microseconds=1)).count == 2
    assert axis(60, T0, T0 + timedelta(minutes=1)).count == 1


def test_an_instant_belongs_to_the_bucket_its_whole_seconds_fall_in() -> None:
    window = axis(60, T0, T0 + timedelta(hours=1))
    assert window.index(T0 + timedelta(seconds=59, microseconds=999_999)) == 0
    assert window.index(T0 + timedelta(seconds=60)) == 1


def test_a_window_too_long_or_backwards_is_refused_naming_the_option() -> None:
    with pytest.raises(ValueError, match=r"^since: the window holds 10081 buckets of 60 s, more than 10080"):
        axis(60, T0, T0 + timedelta(minutes=MAX_BUCKETS + 1))
    assert axis(60, T0, T0 + timedelta(minutes=MAX_BUCKETS)).count == MAX_BUCKETS
    with pytest.raises(ValueError, match=r"^until: must be after since"):
        axis(60, T0, T0)


def test_nearest_rank_percentiles_are_stored_values() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, s) for s in (50, 95, 99, 100)] == [50.0, 95.0, 99.0, 100.0]
    assert percentile([], 50) is None
    assert percentiles([3.0, 1.0, 2.0]) == Percentiles(2.0, 3.0, 3.0)
    assert percentiles([7.5]) == Percentiles(7.5, 7.5, 7.5)


def test_the_integer_rank_is_the_ceiling_of_the_share() -> None:
    for count in range(1, 2000):
        for share in (50, 95, 99):
            assert nearest_rank(count, share) == max(1, math.ceil(share * count / 100))
    rng = random.Random(3)
    values = sorted(rng.lognormvariate(0, 1) for _ in range(999))
    assert percentile(values, 95) == values[math.ceil(0.95 * 999) - 1]


def test_points_cover_every_bucket_and_ignore_rows_outside_the_axis() -> None:
    window = axis(60, T0, T0 + timedelta(minutes=3))
    counts = [(0, "PENDING", 4), (0, "DONE", 3), (2, "FAILURE", 1), (2, "RECEIVED", 9), (5, "PENDING", 1)]
    points = build_points(window, counts, [(0, 0.1, 0.2, 0.3), (7, 1.0, 1.0, 1.0)], [(2, 1.5, 2.5, 3.5)])
    assert [p.start for p in points] == window.starts()
    assert (points[0].published, points[0].succeeded, points[0].failed) == (4, 3, 0)
    assert points[0].runtime == Percentiles(0.1, 0.2, 0.3) and points[0].queue_wait == Percentiles()
    assert points[1].published == 0 and points[1].runtime == Percentiles()
    assert (points[2].failed, points[2].started, points[2].queue_wait) == (1, 0, Percentiles(1.5, 2.5, 3.5))
