"""Uptime from buckets: by time, maintenance apart, no data never up."""

from __future__ import annotations

import pytest

from pymon.model import Status
from pymon.uptime import (
    DAY,
    DURATION_BINS,
    HOUR,
    Bucket,
    bin_of,
    bucket_start,
    merge,
    percentile,
    summarize,
)

T0 = 1_780_000_000 // DAY * DAY  # a UTC midnight


def hour(k: int, **kw: object) -> Bucket:
    return Bucket("web", T0 + k * HOUR, HOUR, **kw)  # type: ignore[arg-type]


def test_uptime_is_by_time_not_by_count_of_checks() -> None:
    # 59 ok checks of a minute each and one failed result that held for an hour.
    buckets = [
        hour(0, checks=59, ok_checks=59, seconds={"ok": 3540.0}),
        hour(0, checks=1, seconds={"failed": 60.0}, worst=Status.FAILED),
        hour(1, checks=1, seconds={"failed": 3600.0}, worst=Status.FAILED),
    ]
    up = summarize("web", buckets, T0, T0 + 2 * HOUR)
    assert up.up == 3540.0 and up.down == 3660.0
    assert up.uptime_pct == pytest.approx(100 * 3540 / 7200)
    assert up.checks == 61 and up.worst is Status.FAILED and up.no_data == 0.0


def test_maintenance_is_left_out_of_both_sides_unless_asked_for() -> None:
    buckets = [hour(0, seconds={"ok": 1800.0}, maintenance={"failed": 1800.0})]
    plain = summarize("web", buckets, T0, T0 + HOUR)
    assert plain.uptime_pct == 100.0 and plain.maintenance == 1800.0
    counted = summarize("web", buckets, T0, T0 + HOUR, include_maintenance=True)
    assert counted.uptime_pct == 50.0


def test_time_nobody_accounts_for_is_no_data_never_up() -> None:
    buckets = [hour(0, seconds={"ok": 600.0}), hour(3, seconds={"ok": 3600.0})]
    up = summarize("web", buckets, T0, T0 + 4 * HOUR)
    assert up.no_data == 4 * HOUR - 4200.0
    assert up.up == 4200.0 and up.uptime_pct == 100.0
    assert summarize("web", [], T0, T0 + HOUR).uptime_pct is None


def test_unknown_and_warn_time() -> None:
    buckets = [hour(0, seconds={"warn": 1200.0, "unknown": 1200.0, "error": 1200.0})]
    up = summarize("web", buckets, T0, T0 + HOUR)
    assert (up.up, up.down, up.unknown) == (1200.0, 1200.0, 1200.0)
    assert up.uptime_pct == 50.0


def test_a_bucket_half_inside_the_window_counts_half() -> None:
    up = summarize("web", [hour(0, seconds={"ok": 3600.0})], T0 + 1800, T0 + 5400)
    assert up.up == 1800.0 and up.no_data == 1800.0


def test_merge_adds_two_halves_of_one_hour() -> None:
    a = hour(
        0,
        checks=2,
        ok_checks=2,
        seconds={"ok": 60.0},
        duration_sum=0.2,
        duration_min=0.05,
        duration_max=0.15,
        bins={bin_of(0.05): 1, bin_of(0.15): 1},
        worst=Status.OK,
    )
    b = hour(
        0,
        checks=1,
        seconds={"ok": 30.0, "failed": 30.0},
        duration_sum=1.0,
        duration_min=1.0,
        duration_max=1.0,
        bins={bin_of(1.0): 1},
        worst=Status.FAILED,
    )
    m = merge(a, b)
    assert (m.checks, m.ok_checks) == (3, 2)
    assert m.seconds == {"ok": 90.0, "failed": 30.0}
    assert (m.duration_min, m.duration_max, m.worst) == (0.05, 1.0, Status.FAILED)
    assert sum(m.bins.values()) == 3


def test_percentile_is_the_upper_edge_of_the_bin_holding_it() -> None:
    bins = {bin_of(0.010): 95, bin_of(2.0): 5}
    p95 = percentile(bins, 0.95)
    assert p95 is not None and 0.010 <= p95 < 0.011
    p99 = percentile(bins, 0.99)
    assert p99 is not None and 2.0 <= p99 < 2.2
    assert percentile({}, 0.95) is None
    assert bin_of(10_000.0) == len(DURATION_BINS) - 1


def test_buckets_are_utc_hours_and_days() -> None:
    assert bucket_start(T0 + 5 * HOUR + 59, HOUR) == T0 + 5 * HOUR
    assert bucket_start(T0 + DAY - 1, DAY) == T0


def test_a_window_ending_now_takes_the_current_hour_whole() -> None:
    # 10 minutes into the hour, all of it up: a 24 h window ending now has 600 s up,
    # not the share of the hour that has passed (600 s x 600 / 3600).
    now = T0 + 600
    buckets = [hour(0, checks=120, ok_checks=120, seconds={"ok": 600.0})]
    up = summarize("web", buckets, now - DAY, now, now=now)
    assert up.up == 600.0 and up.no_data == DAY - 600.0
    # Without a present, a window ending inside a past hour takes its share.
    assert summarize("web", buckets, now - DAY, now).up == 100.0
