"""Rollups as results arrive (uptime.spans): spans split at UTC hours and days, over
months of a fake clock, across DST changes and a leap day; gaps are no data;
maintenance is kept apart."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from pymon.model import ServiceState, Status
from pymon.store.sql.buckets import coalesce
from pymon.uptime import (
    DAY,
    HOUR,
    Bucket,
    Tally,
    credit,
    days_of,
    frozen,
    gap_limit,
    layout,
    spans,
    summarize,
)

BERLIN = ZoneInfo("Europe/Berlin")


def utc(year: int, month: int, day: int, hour: int = 0) -> float:
    return datetime(year, month, day, hour, tzinfo=UTC).timestamp()


def state(
    at: float | None, status: Status = Status.OK, *, maintenance: bool = False
) -> ServiceState:
    return ServiceState("web", status, last_check=at, maintenance=maintenance)


def run(
    start: float,
    end: float,
    interval: float,
    status_at: Callable[[float], Status] = lambda t: Status.OK,
    *,
    gap: float | None = None,
) -> dict[tuple[str, int, int], Bucket]:
    """A service checked every ``interval`` seconds from ``start`` to ``end`` (a fake
    clock: each result's time is given), its deltas coalesced as the writer does."""
    limit = gap_limit(interval, 10.0) if gap is None else gap
    previous = ServiceState("web")
    deltas: list[Bucket] = []
    t = start
    while t <= end:
        current = state(t, status_at(t))
        deltas += spans(previous, current, 0.02, limit)
        previous = current
        t += interval
    return {key: frozen(b) for key, b in coalesce(deltas).items()}


def seconds_of(bucket: Bucket) -> float:
    return sum(bucket.seconds.values()) + sum(bucket.maintenance.values())


def test_a_span_is_split_at_hour_and_day_boundaries() -> None:
    midnight = utc(2027, 5, 1)
    before, after = state(midnight - 90.0, Status.ERROR), state(midnight + 30.0)
    out = {(b.width, b.start): b for b in spans(before, after, 0.5, 200.0)}
    assert set(out) == {
        (HOUR, midnight - HOUR),
        (HOUR, midnight),
        (DAY, midnight - DAY),
        (DAY, midnight),
    }
    # The time is the previous result's (error); the check is this one's (ok).
    assert out[HOUR, midnight - HOUR].seconds == {"error": 90.0}
    assert out[HOUR, midnight - HOUR].checks == 0
    assert out[HOUR, midnight].seconds == {"error": 30.0}
    assert out[HOUR, midnight].checks == 1 and out[HOUR, midnight].ok_checks == 1
    assert out[HOUR, midnight].worst is Status.OK
    assert out[DAY, midnight - DAY].seconds == {"error": 90.0}
    assert out[DAY, midnight].duration_sum == 0.5 and out[DAY, midnight].bins


def test_months_of_checks_add_up_to_the_time_covered() -> None:
    # February to April 2027 (Berlin's spring change inside), a check every 5 min,
    # failing for 10 minutes of every day at 03:00 UTC; the last result at ``end``.
    start, end = utc(2027, 2, 1), utc(2027, 5, 1)

    def status_at(t: float) -> Status:
        return Status.FAILED if 3 * HOUR <= t % DAY < 3 * HOUR + 600 else Status.OK

    buckets = run(start, end, 300.0, status_at)
    days = [b for b in buckets.values() if b.width == DAY and b.start < end]
    hours = [b for b in buckets.values() if b.width == HOUR and b.start < end]
    assert len(days) == 89 and len(hours) == 89 * 24
    assert all(seconds_of(b) == pytest.approx(DAY) for b in days)
    assert all(seconds_of(b) == pytest.approx(HOUR) for b in hours)
    assert all(b.seconds["failed"] == pytest.approx(600.0) for b in days)
    up = summarize("web", days, start, end)
    assert up.down == pytest.approx(89 * 600.0) and up.no_data == pytest.approx(0.0)
    assert up.checks == (end - start) // 300


@pytest.mark.parametrize(("day", "local_hours"), [((2027, 3, 28), 23), ((2027, 10, 31), 25)])
def test_a_dst_change_day_is_still_86400_utc_seconds(
    day: tuple[int, int, int], local_hours: int
) -> None:
    # Berlin's day has 23 or 25 hours; the buckets are UTC's, which has neither change.
    local = datetime(*day, tzinfo=BERLIN)
    following = datetime.fromtimestamp(local.timestamp() + 36 * HOUR, BERLIN).replace(hour=0)
    assert (following.timestamp() - local.timestamp()) / HOUR == local_hours
    midnight = utc(*day)
    buckets = run(midnight - DAY, midnight + 2 * DAY, 30.0)
    that_day = buckets["web", DAY, int(midnight)]
    assert that_day.end - that_day.start == DAY
    assert seconds_of(that_day) == pytest.approx(DAY)
    hours = sorted(b.start for b in buckets.values() if b.width == HOUR)
    inside = [h for h in hours if midnight <= h < midnight + DAY]
    assert len(inside) == 24
    assert all(b - a == HOUR for a, b in itertools.pairwise(hours))


def test_a_leap_day_is_a_day_of_its_own() -> None:
    leap = utc(2028, 2, 29)
    buckets = run(utc(2028, 2, 28), utc(2028, 3, 2), 120.0)
    starts = sorted(b.start for b in buckets.values() if b.width == DAY)
    assert starts == [utc(2028, 2, 28), leap, utc(2028, 3, 1), utc(2028, 3, 2)]
    assert seconds_of(buckets["web", DAY, int(leap)]) == pytest.approx(DAY)
    assert datetime.fromtimestamp(leap + DAY, UTC).month == 3


def test_a_span_longer_than_the_gap_limit_is_no_data() -> None:
    limit = gap_limit(60.0, 10.0)
    assert limit == 130.0
    t = utc(2027, 6, 1, 12)
    late = spans(state(t, Status.OK), state(t + 131.0), 0.1, limit)
    # The check counts, the 131 seconds before it do not.
    assert [seconds_of(b) for b in late] == [0.0, 0.0]
    assert [b.checks for b in late] == [1, 1]
    in_time = spans(state(t), state(t + 130.0), 0.1, limit)
    assert [seconds_of(b) for b in in_time] == [130.0, 130.0]
    # pymon stopped for 50 minutes: that hour is mostly no data, never up.
    stopped = coalesce(
        [
            *spans(state(t), state(t + 60), 0.1, limit),
            *spans(state(t + 60), state(t + 3060), 0.1, limit),
        ]
    )
    up = summarize("web", [frozen(b) for b in stopped.values() if b.width == HOUR], t, t + HOUR)
    assert up.up == 60.0 and up.no_data == pytest.approx(HOUR - 60.0)


def test_time_in_maintenance_is_kept_apart_by_status() -> None:
    t = utc(2027, 7, 1, 8)
    out = spans(state(t, Status.FAILED, maintenance=True), state(t + 60), 0.1, 200.0)
    hour = next(b for b in out if b.width == HOUR)
    assert hour.maintenance == {"failed": 60.0} and hour.seconds == {}
    assert summarize("web", [hour], t, t + 60).uptime_pct is None
    counted = summarize("web", [hour], t, t + 60, include_maintenance=True)
    assert counted.uptime_pct == 0.0


def test_the_first_result_has_no_span_and_a_decision_without_a_check_counts_none() -> None:
    t = utc(2027, 8, 1)
    first = spans(ServiceState("web"), state(t), 0.1, 200.0)
    assert [seconds_of(b) for b in first] == [0.0, 0.0] and [b.checks for b in first] == [1, 1]
    # Disabled by a reload: the time up to it is credited, no check counted.
    disabled = replace(state(t + 50, Status.DISABLED))
    out = spans(state(t), disabled, None, 200.0)
    assert [(b.checks, b.seconds) for b in out] == [(0, {"ok": 50.0}), (0, {"ok": 50.0})]
    # The clock did not move (a review, an acknowledgement): nothing.
    assert spans(state(t), state(t), None, 200.0) == []


def test_a_window_reads_days_inside_and_hours_at_its_edges() -> None:
    since, until = utc(2027, 1, 1, 18), utc(2027, 1, 5, 6)
    assert layout(since, until) == [
        (HOUR, since, utc(2027, 1, 2)),
        (DAY, utc(2027, 1, 2), utc(2027, 1, 5)),
        (HOUR, utc(2027, 1, 5), until),
    ]
    assert layout(utc(2027, 1, 1), utc(2027, 1, 3)) == [(DAY, utc(2027, 1, 1), utc(2027, 1, 3))]
    assert layout(since, since + HOUR) == [(HOUR, since, since + HOUR)]
    assert layout(since, since) == []
    assert layout(until, since) == []
    # Across one midnight only: hours alone.
    midnight = utc(2027, 1, 2)
    assert layout(midnight - HOUR, midnight + HOUR) == [(HOUR, midnight - HOUR, midnight + HOUR)]


def uneven_steps(midnight: float) -> list[tuple[float, Status, bool, float | None]]:
    """(at, status, in maintenance, duration) of checks at uneven times across hours
    and ``midnight``, statuses and maintenance changing, a gap beyond the limit (4,000
    s), decisions without a check."""
    return [
        (midnight - 7300.0, Status.OK, False, 0.01),
        (midnight - 3700.0, Status.FAILED, False, 2.5),
        (midnight - 3500.0, Status.WARN, True, 0.3),
        (midnight - 100.0, Status.ERROR, True, None),
        (midnight + 50.0, Status.OK, False, 0.0001),
        (midnight + 9000.0, Status.UNKNOWN, False, 0.2),  # after a gap: no data
        (midnight + 9001.5, Status.DISABLED, False, None),
        (midnight + 9100.0, Status.OK, False, 700.0),
    ]


def test_credit_adds_each_decision_into_the_tallies_as_its_spans_would() -> None:
    # Checks at uneven times across hours and a day boundary, statuses and
    # maintenance changing, a gap beyond the limit, decisions without a check.
    midnight = utc(2027, 6, 1)
    steps = uneven_steps(midnight)
    tallies: dict[tuple[str, int, float], Tally] = {}
    deltas: list[Bucket] = []
    previous = ServiceState("web")
    for at, status, apart, duration in steps:
        current = state(at, status, maintenance=apart)
        credit(tallies, previous, current, duration, 4000.0)
        deltas += spans(previous, current, duration, 4000.0)
        previous = current
    want = {key: frozen(b) for key, b in coalesce(deltas).items()}
    got = {(t.service, t.width, int(t.start)): t.bucket() for t in tallies.values()}
    assert got == want
    assert got["web", DAY, int(midnight - DAY)].worst is Status.FAILED
    # Worked out by hand: the hour before midnight, and the day after it.
    last_hour = got["web", HOUR, int(midnight - HOUR)]
    assert last_hour.seconds == {"failed": 100.0}
    assert last_hour.maintenance == {"warn": 3400.0, "error": 100.0}
    assert (last_hour.checks, last_hour.ok_checks, last_hour.worst) == (1, 0, Status.WARN)
    day = got["web", DAY, int(midnight)]
    assert day.seconds == {"unknown": 1.5, "disabled": 98.5}
    assert day.maintenance == {"error": 50.0}
    assert (day.checks, day.ok_checks, day.duration_max) == (3, 2, 700.0)


def test_days_derived_from_credited_hours_are_the_days_credit_adds() -> None:
    # The writer credits hours alone and derives the days at each flush: over checks
    # crossing hours and midnight, flushed after every check, every other one or once,
    # the days it writes add up to what crediting both widths adds, and deriving them
    # leaves the hours as they were (a day of one hour shares its maps).
    midnight = utc(2027, 6, 1)
    steps = uneven_steps(midnight)
    for every in (1, 2, len(steps)):
        both: dict[tuple[str, int, float], Tally] = {}
        days: list[Bucket] = []
        hours: dict[tuple[str, int, float], Tally] = {}
        previous = ServiceState("web")
        for k, (at, status, apart, duration) in enumerate(steps, 1):
            current = state(at, status, maintenance=apart)
            credit(both, previous, current, duration, 4000.0)
            credit(hours, previous, current, duration, 4000.0, (HOUR,))
            previous = current
            if k % every == 0 or k == len(steps):
                before = [t.bucket() for t in hours.values()]
                days += [d.bucket() for d in days_of(list(hours.values()))]
                assert [t.bucket() for t in hours.values()] == before
                assert all(t.width == HOUR for t in hours.values())
                hours = {}
        want = {key: frozen(b) for key, b in coalesce(both.values()).items() if key[1] == DAY}
        assert {key: frozen(b) for key, b in coalesce(days).items()} == want
        hours_total = sum(seconds_of(frozen(b)) for b in both.values() if b.width == HOUR)
        assert sum(seconds_of(b) for b in want.values()) == hours_total == 7300.0 + 50.0 + 100.0
