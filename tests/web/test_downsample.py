"""Downsampling a history for charts: bucket bounds, worst status, min/avg/max."""

from __future__ import annotations

import pytest

from pymon.model import Status
from pymon.web.downsample import Sample, downsample

OK, WARN, FAILED = Status.OK, Status.WARN, Status.FAILED


def s(at: float, status: Status = OK, **metrics: float) -> Sample:
    return Sample(at, status, metrics)


@pytest.mark.parametrize(
    ("samples", "points", "since", "until", "expected"),
    [
        # (start, end, count, status) per point
        ([], 5, None, None, []),
        ([s(1), s(2)], 5, None, None, [(1, 1, 1, "ok"), (2, 2, 1, "ok")]),
        ([s(0), s(1), s(2), s(3)], 2, None, None, [(0, 1.5, 2, "ok"), (1.5, 3, 2, "ok")]),
        ([s(0), s(1, FAILED), s(9, WARN)], 2, 0, 10, [(0, 5, 2, "failed"), (5, 10, 1, "warn")]),
        ([s(0), s(5), s(10), s(11)], 1, 0, 10, [(0, 10, 3, "ok")]),
        (
            [s(0), s(10), s(20), s(30)],
            3,
            None,
            None,
            [(0, 10, 1, "ok"), (10, 20, 1, "ok"), (20, 30, 2, "ok")],
        ),
        ([s(0), s(1), s(100)], 2, None, None, [(0, 50, 2, "ok"), (50, 100, 1, "ok")]),
        ([s(7), s(7), s(7)], 2, None, None, [(7, 7, 3, "ok")]),
    ],
)
def test_buckets(
    samples: list[Sample],
    points: int,
    since: float | None,
    until: float | None,
    expected: list[tuple[float, float, int, str]],
) -> None:
    got = [b.to_json() for b in downsample(samples, points, since, until)]
    assert [(p["start"], p["end"], p["count"], p["status"]) for p in got] == expected


def test_metrics_are_min_avg_max_per_bucket() -> None:
    samples = [s(0, ms=10), s(1, ms=30), s(2, ms=20), s(9, ms=5, other=1)]
    first, second = (b.to_json() for b in downsample(samples, 2, 0, 10))
    assert first["metrics"] == {"ms": {"min": 10, "avg": 20, "max": 30}}
    assert second["metrics"] == {
        "ms": {"min": 5, "avg": 5, "max": 5},
        "other": {"min": 1, "avg": 1, "max": 1},
    }


def test_non_finite_values_are_left_out() -> None:
    samples = [s(0, ms=float("nan")), s(1, ms=4), s(2, ms=float("inf")), s(3)]
    (point,) = (b.to_json() for b in downsample(samples, 1))
    assert point["metrics"] == {"ms": {"min": 4, "avg": 4, "max": 4}}
    assert point["count"] == 4


def test_never_more_points_than_asked() -> None:
    samples = [s(i * 0.37, OK if i % 7 else FAILED) for i in range(10_000)]
    for points in (1, 2, 3, 100, 999):
        buckets = downsample(samples, points)
        assert len(buckets) <= points
        assert sum(b.count for b in buckets) == len(samples)


def test_points_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        downsample([s(0)], 0)


# -- gaps ------------------------------------------------------------------------------

HOLE = 50 * 60  # pymon stopped for 50 minutes


def with_hole(interval: float, before: int, after: int) -> list[Sample]:
    """``before`` results ``interval`` apart, a 50-minute hole, ``after`` more."""
    first = [s(i * interval, ms=10) for i in range(before)]
    resumed = first[-1].at + HOLE
    return first + [s(resumed + i * interval, ms=12) for i in range(after)]


def test_a_hole_marks_the_point_after_it() -> None:
    samples = with_hole(60, 10, 10)
    got = [b.to_json() for b in downsample(samples, 200, interval=60)]
    assert [i for i, p in enumerate(got) if p["gap"]] == [10]


def test_a_hole_marks_one_bucket_when_downsampled() -> None:
    samples = with_hole(10, 600, 600)  # 100 + 100 minutes around the hole, 100 points
    buckets = downsample(samples, 100, interval=10)
    assert len(buckets) < 100  # the buckets inside the hole are empty, left out
    marked = [b for b in buckets if b.gap]
    assert len(marked) == 1
    assert marked[0].first == samples[600].at


def test_twice_the_interval_is_late_not_a_gap() -> None:
    on_time = [s(0), s(60), s(180)]  # one check late by a whole interval
    assert not any(b.gap for b in downsample(on_time, 10, interval=60))
    past = [s(0), s(60), s(180.5)]
    assert [b.gap for b in downsample(past, 10, interval=60)] == [False, False, True]


def test_wide_buckets_raise_the_threshold() -> None:
    # 1,000 results a second apart with a 5-minute hole, in 10 points of ~2 minutes:
    # a hole over twice the bucket width is still one.
    first = [s(float(i)) for i in range(500)]
    samples = first + [s(800.0 + i) for i in range(500)]
    buckets = downsample(samples, 10, interval=1)
    width = buckets[0].end - buckets[0].start
    assert 2 * width < 300 + 1
    assert [b.gap for b in buckets].count(True) == 1
    # Ten points over a 60-second hole in 1,100 seconds: narrower than two buckets.
    short = first + [s(560.0 + i) for i in range(540)]
    assert not any(b.gap for b in downsample(short, 10, interval=1))


def test_without_an_interval_nothing_is_a_gap() -> None:
    assert not any(b.gap for b in downsample(with_hole(60, 3, 3), 200))
