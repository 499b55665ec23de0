"""Uptime that lasts: results rolled up per service into hour and day buckets, and
uptime over any window computed from them **by time**, not by count of checks.

A result says what a service was from the moment it was taken until the next one.
The rollups credit each such span to the status of the result that began it, split
at bucket boundaries (UTC hours and UTC days, so a DST change never makes a bucket
longer or shorter). A span longer than the service's gap limit is *no data*: pymon
was not running, or the service was not checked. It is never counted as up.

What counts (docs/uptime.md):

* **up**: ``ok`` and ``warn`` (degraded, still serving);
* **down**: ``error`` and ``failed``;
* ``unknown`` and ``disabled`` time is counted on neither side (shown apart);
* time in maintenance is kept apart by status and left out of both sides unless
  ``include_maintenance`` is asked for;
* uptime % = up / (up + down), None when there is neither.

Buckets are written as results arrive (:func:`spans`): the time from one result to
the next is credited to the first one's status, in ``maintenance`` when that state
was in maintenance; a span longer than the gap limit (:func:`gap_limit`: twice the
interval plus the timeout) is no data. Because a service's ``last_check`` is kept
with its state, a restart goes on from the last stored result: no time is lost
within the limit, and none is counted twice.

Check durations are kept as a small histogram of fixed logarithmic bins, so buckets
merge by addition (an hour into a day, days into a report) and a p95 over any window
comes out of the merged bins, exact to the bin's width (about 9 %).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from pymon.model import ServiceState, Status

__all__ = [
    "DAY",
    "DOWN",
    "DURATION_BINS",
    "HOUR",
    "STATUSES",
    "UP",
    "Bucket",
    "Delta",
    "Piece",
    "Tally",
    "Totals",
    "Uptime",
    "add_up",
    "bin_of",
    "bucket_start",
    "by_service",
    "credit",
    "days_of",
    "frozen",
    "gap_limit",
    "layout",
    "merge",
    "percentile",
    "spans",
    "summarize",
    "total",
]

HOUR = 3600
DAY = 86400

UP = frozenset({Status.OK.value, Status.WARN.value})
DOWN = frozenset({Status.ERROR.value, Status.FAILED.value})

#: Every status, in the order the store keeps their times (a column each).
STATUSES: tuple[Status, ...] = tuple(Status)

#: Upper edges of the duration histogram's bins, in seconds: 0.1 ms to ~10 min,
#: each about 9 % wider than the one before (2 ** (1/8)); the last bin takes the rest.
DURATION_BINS: tuple[float, ...] = tuple(0.0001 * 2 ** (k / 8) for k in range(8 * 23))


def bin_of(duration: float) -> int:
    """The histogram bin a check duration (seconds) falls in."""
    return min(bisect.bisect_left(DURATION_BINS, duration), len(DURATION_BINS) - 1)


def bucket_start(at: float, width: int) -> float:
    """The start of the UTC hour (``width`` = :data:`HOUR`) or day holding ``at``."""
    return float(math.floor(at / width) * width)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One service's hour or day: how many checks, and how long it spent in each status.

    ``seconds`` maps a status value to the time spent in it outside maintenance,
    ``maintenance`` the same inside maintenance. ``worst`` is the worst status a
    result in the bucket had (None when no result was taken in it). Durations are
    the checks' own (seconds): their sum, extremes and histogram (``bins`` maps a
    bin index of :data:`DURATION_BINS` to a count; empty bins are left out).
    """

    service: str
    start: float
    width: int
    checks: int = 0
    ok_checks: int = 0
    seconds: Mapping[str, float] = field(default_factory=dict)
    maintenance: Mapping[str, float] = field(default_factory=dict)
    worst: Status | None = None
    duration_sum: float = 0.0
    duration_min: float | None = None
    duration_max: float | None = None
    bins: Mapping[int, int] = field(default_factory=dict)

    @property
    def end(self) -> float:
        """When the bucket ends (exclusive)."""
        return self.start + self.width


def _add(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
    out = dict(a)
    for key, value in b.items():
        out[key] = out.get(key, 0.0) + value
    return out


def _extreme(pick: Callable[[list[float]], float], *values: float | None) -> float | None:
    known = [v for v in values if v is not None]
    return pick(known) if known else None


def merge(a: Bucket, b: Bucket) -> Bucket:
    """``a`` and ``b`` (the same service and bucket) added together, as if one had
    recorded both (a restart or a handover in the middle of an hour)."""
    bins = dict(a.bins)
    for index, count in b.bins.items():
        bins[index] = bins.get(index, 0) + count
    worsts = [s for s in (a.worst, b.worst) if s is not None]
    return Bucket(
        service=a.service,
        start=a.start,
        width=a.width,
        checks=a.checks + b.checks,
        ok_checks=a.ok_checks + b.ok_checks,
        seconds=_add(a.seconds, b.seconds),
        maintenance=_add(a.maintenance, b.maintenance),
        worst=Status.worst(*worsts) if worsts else None,
        duration_sum=a.duration_sum + b.duration_sum,
        duration_min=_extreme(min, a.duration_min, b.duration_min),
        duration_max=_extreme(max, a.duration_max, b.duration_max),
        bins=bins,
    )


def percentile(bins: Mapping[int, int], q: float) -> float | None:
    """The ``q`` quantile (0-1) of the durations counted in ``bins``: the upper edge
    of the bin that holds it. None when nothing was counted."""
    total = sum(bins.values())
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index in sorted(bins):
        seen += bins[index]
        if seen >= rank:
            return DURATION_BINS[index]
    return DURATION_BINS[max(bins)]


@dataclass(frozen=True, slots=True)
class Uptime:
    """One service's record over ``since``..``until`` (seconds in each class of time).

    ``no_data`` is the part of the window no bucket accounts for (pymon stopped, the
    service not checked yet, or not checked at all). ``maintenance`` is time in
    maintenance, whatever the status; it is inside ``up``/``down`` only when the
    summary was asked to include maintenance.
    """

    service: str
    since: float
    until: float
    up: float = 0.0
    down: float = 0.0
    unknown: float = 0.0
    maintenance: float = 0.0
    no_data: float = 0.0
    checks: int = 0
    ok_checks: int = 0
    worst: Status | None = None
    response_avg: float | None = None
    response_p95: float | None = None
    response_min: float | None = None
    response_max: float | None = None

    @property
    def uptime_pct(self) -> float | None:
        """Up time over up and down time, in percent; None when neither was seen."""
        known = self.up + self.down
        # The ratio first: all up is exactly 100.0, not 99.99999999999999.
        return None if known <= 0 else 100.0 * (self.up / known)

    @property
    def downtime_minutes(self) -> float:
        """Down time in minutes."""
        return self.down / 60.0


class Totals:
    """Buckets (of one service) added up, each one's time scaled to the share of it
    inside a window: what :func:`total` turns into an :class:`Uptime`.

    :func:`summarize` adds :class:`Bucket` objects into one; a store may hand back
    one made in the database (``SqlStore.totals``: the sums of a window's rows), so
    a report over many services never builds a Bucket per row. ``seconds`` and
    ``maintenance`` map a status value to its (scaled) time; ``bins`` is the merged
    histogram; checks and durations count whole buckets.
    """

    __slots__ = (
        "bins",
        "checks",
        "duration_max",
        "duration_min",
        "duration_sum",
        "maintenance",
        "ok_checks",
        "seconds",
        "worst",
    )

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.maintenance: dict[str, float] = {}
        self.checks = 0
        self.ok_checks = 0
        self.worst: Status | None = None
        self.duration_sum = 0.0
        self.duration_min: float | None = None
        self.duration_max: float | None = None
        self.bins: dict[int, int] = {}

    def add(self, bucket: Bucket | Tally, share: float = 1.0) -> None:
        """Add ``bucket``, its time scaled by ``share`` (its part inside the window)."""
        for into, items in ((self.seconds, bucket.seconds), (self.maintenance, bucket.maintenance)):
            for status, seconds in items.items():
                into[status] = into.get(status, 0.0) + seconds * share
        self.checks += bucket.checks
        self.ok_checks += bucket.ok_checks
        self.duration_sum += bucket.duration_sum
        self.extremes(bucket.worst, bucket.duration_min, bucket.duration_max)
        bins = self.bins
        for index, count in bucket.bins.items():
            bins[index] = bins.get(index, 0) + count

    def add_within(
        self, bucket: Bucket | Tally, since: float, until: float, now: float | None = None
    ) -> None:
        """Add ``bucket`` for the share of it inside ``since``..``until`` (nothing when
        it is outside): how every reader scales a bucket at a window's edge. ``now``,
        when given, is where the bucket's time ends (see :func:`summarize`)."""
        end = bucket.start + bucket.width
        if now is not None and now < end:
            end = now
        overlap = min(end, until) - max(bucket.start, since)
        if overlap > 0:
            self.add(bucket, overlap / (end - bucket.start))

    def extremes(self, worst: Status | None, low: float | None, high: float | None) -> None:
        """Take a worst status and duration extremes into account (None: none seen)."""
        if worst is not None and (self.worst is None or worst.severity > self.worst.severity):
            self.worst = worst
        if low is not None and (self.duration_min is None or low < self.duration_min):
            self.duration_min = low
        if high is not None and (self.duration_max is None or high > self.duration_max):
            self.duration_max = high


def add_up(
    buckets: Iterable[Bucket | Tally], since: float, until: float, now: float | None = None
) -> dict[str, Totals]:
    """``buckets`` (of one width) added up per service for ``since``..``until`` (and
    ``now``, as :func:`summarize` takes it), as a store's ``totals`` answers (services
    with no bucket in the window left out)."""
    out: dict[str, Totals] = {}
    for bucket in buckets:
        if bucket.start < until and bucket.start + bucket.width > since:
            totals = out.get(bucket.service)
            if totals is None:
                totals = out[bucket.service] = Totals()
            totals.add_within(bucket, since, until, now)
    return out


def summarize(
    service: str,
    buckets: Iterable[Bucket | Tally],
    since: float,
    until: float,
    *,
    include_maintenance: bool = False,
    now: float | None = None,
) -> Uptime:
    """``service``'s uptime over ``since``..``until`` from its buckets (of one width).

    A bucket only partly inside the window counts for the share of it that is
    inside (its seconds scaled by that share), so a window is as exact as the
    buckets' width at its edges; checks and durations count whole buckets that
    overlap the window. ``now``, when given, is where every bucket's time ends: the
    current hour holds nothing after it, so a window ending now takes that hour
    whole, not the share of it that has passed (a 24 h window at 23:02 would
    otherwise count 2 of the last hour's minutes).
    """
    totals = Totals()
    for bucket in buckets:
        totals.add_within(bucket, since, until, now)
    return total(service, (totals,), since, until, include_maintenance=include_maintenance)


def total(
    service: str,
    parts: Iterable[Totals],
    since: float,
    until: float,
    *,
    include_maintenance: bool = False,
) -> Uptime:
    """``service``'s uptime over ``since``..``until`` from the :class:`Totals` of the
    buckets inside it (several when the window was read in pieces of different
    widths, :func:`layout`). The one place that says what counts as up and down."""
    span = max(until - since, 0.0)
    up = down = unknown = maintenance = covered = duration_sum = 0.0
    checks = ok_checks = 0
    whole = Totals()
    bins = whole.bins
    for part in parts:
        for status, seconds in part.seconds.items():
            covered += seconds
            if status in UP:
                up += seconds
            elif status in DOWN:
                down += seconds
            else:
                unknown += seconds
        for status, seconds in part.maintenance.items():
            covered += seconds
            maintenance += seconds
            if include_maintenance:
                if status in UP:
                    up += seconds
                elif status in DOWN:
                    down += seconds
        checks += part.checks
        ok_checks += part.ok_checks
        duration_sum += part.duration_sum
        whole.extremes(part.worst, part.duration_min, part.duration_max)
        for index, count in part.bins.items():
            bins[index] = bins.get(index, 0) + count
    timed = sum(bins.values())
    return Uptime(
        service=service,
        since=since,
        until=until,
        up=up,
        down=down,
        unknown=unknown,
        maintenance=maintenance,
        no_data=max(span - covered, 0.0),
        checks=checks,
        ok_checks=ok_checks,
        worst=whole.worst,
        response_avg=duration_sum / timed if timed else None,
        response_p95=percentile(bins, 0.95),
        response_min=whole.duration_min,
        response_max=whole.duration_max,
    )


def by_service(buckets: Sequence[Bucket]) -> dict[str, list[Bucket]]:
    """``buckets`` grouped by service, each list in time order."""
    out: dict[str, list[Bucket]] = {}
    for bucket in sorted(buckets, key=lambda b: (b.service, b.start)):
        out.setdefault(bucket.service, []).append(bucket)
    return out


def gap_limit(interval: float, timeout: float) -> float:
    """The longest span between two results of a service that still counts as
    watched: two intervals (one run may be skipped or late) plus the timeout (the
    run may take that long). Longer is no data."""
    return 2.0 * interval + timeout


def spans(
    previous: ServiceState, state: ServiceState, duration: float | None, gap: float
) -> list[Bucket]:
    """The hour and day buckets' deltas for one decision that took ``previous`` to
    ``state``, as :func:`credit` adds them (hour deltas first, then day deltas, each
    in time order)."""
    tallies: dict[tuple[str, int, float], Tally] = {}
    credit(tallies, previous, state, duration, gap)
    return [tally.bucket() for tally in tallies.values()]


def credit(
    tallies: dict[tuple[str, int, float], Tally],
    previous: ServiceState,
    state: ServiceState,
    duration: float | None,
    gap: float,
    widths: tuple[int, ...] = (HOUR, DAY),
) -> None:
    """Add one decision that took ``previous`` to ``state`` to ``tallies`` (keyed by
    service, width and start; a bucket not there yet is added), for each of
    ``widths`` (the writer credits hours alone and derives the days, :func:`days_of`).

    The time from ``previous.last_check`` to ``state.last_check`` is credited to
    ``previous.status`` (in ``maintenance`` when ``previous`` was in maintenance),
    split at UTC hour and day boundaries; none when there was no previous result,
    the clock did not move on, or the span is longer than ``gap`` (no data).
    ``duration`` is the check's own when a check ran (it then counts, with its
    status as the bucket's worst); None for a decision without a result (a service
    disabled).
    """
    at = state.last_check
    if at is None:
        return
    since = previous.last_check
    spanned = since is not None and 0 < at - since <= gap
    status = previous.status.value
    apart = previous.maintenance
    name = state.name
    checked = state.status
    index = None if duration is None else bin_of(duration)
    # Runs once per check, on the event loop: the check goes straight into the
    # writer's tally for its bucket (building two frozen Buckets a check and adding
    # them was half of what the rollups cost the loop, docs/performance.md).
    for width in widths:
        tail = 0.0
        checked_in = float(math.floor(at / width) * width)
        if spanned:
            assert since is not None
            start = since
            # Only a span that began in an earlier bucket is split (the rare case).
            while start < checked_in:
                begun = bucket_start(start, width)
                end = min(begun + width, at)
                _tally(tallies, name, width, begun).spent(status, end - start, apart)
                start = end
            tail = at - start
        if index is None and not tail:
            continue
        # _tally and Tally.spent inlined: this is the path of every check.
        key = (name, width, checked_in)
        tally = tallies.get(key)
        if tally is None:
            tally = tallies[key] = Tally(name, checked_in, width)
        if tail:
            into = tally.maintenance if apart else tally.seconds
            into[status] = into.get(status, 0.0) + tail
        if index is not None:
            assert duration is not None
            tally.checked(checked, duration, index)


def _tally(
    tallies: dict[tuple[str, int, float], Tally], name: str, width: int, start: float
) -> Tally:
    key = (name, width, start)
    tally = tallies.get(key)
    if tally is None:
        tally = tallies[key] = Tally(name, start, width)
    return tally


def days_of(hours: Iterable[Tally]) -> list[Tally]:
    """The day deltas that hold ``hours`` (hour tallies): one per service and UTC day,
    the sum of its hours there. An hour's split is finer than a day's (a day's
    boundary is an hour's too), so this is what :func:`credit` adds to the days.

    A day with one hour among ``hours`` (the usual case: a service is checked once
    between two flushes) shares that hour's maps instead of copying them: neither is
    changed once handed over."""
    days: dict[tuple[str, float], Tally] = {}
    # The days made of more than one hour: their own copies, added to.
    summed: dict[tuple[str, float], Tally] = {}
    over = Tally.over
    for hour in hours:
        start = float(math.floor(hour.start / DAY) * DAY)
        key = (hour.service, start)
        day = days.get(key)
        if day is None:
            days[key] = over(hour, start, DAY)
            continue
        own = summed.get(key)
        if own is None:
            own = summed[key] = days[key] = Tally.of(day)
        own.add(hour)
    return list(days.values())


class Piece(NamedTuple):
    """A part of a window read from buckets of one ``width`` (:data:`HOUR` or :data:`DAY`)."""

    width: int
    start: float
    end: float


def layout(since: float, until: float) -> list[Piece]:
    """Which buckets to read for ``since``..``until``: pieces that tile the window, day
    buckets for the whole UTC days inside it and hour buckets for the edges (a year is
    365 rows a service, not 8,760). A window holding no whole day is read from hours
    alone. Summarize the buckets of all pieces together over the whole window: the
    pieces never overlap."""
    if until <= since:
        return []
    first = bucket_start(since, DAY) + (0 if since % DAY == 0 else DAY)
    last = bucket_start(until, DAY)
    if last <= first:
        return [Piece(HOUR, since, until)]
    pieces = [Piece(HOUR, since, first), Piece(DAY, first, last), Piece(HOUR, last, until)]
    return [p for p in pieces if p.end > p.start]


class Tally(Totals):
    """A bucket being added up in place: :func:`merge` without a new Bucket (and its
    dicts) each time. The writer's pending rollups are tallies that each check is
    credited to (:func:`credit`); a failed flush adds what it held back into them."""

    __slots__ = ("service", "start", "width")

    def __init__(self, service: str, start: float, width: int) -> None:
        # Totals.__init__ inlined (one made per check and flush: a call less).
        self.seconds: dict[str, float] = {}
        self.maintenance: dict[str, float] = {}
        self.bins: dict[int, int] = {}
        self.checks = self.ok_checks = 0
        self.worst: Status | None = None
        self.duration_sum = 0.0
        self.duration_min: float | None = None
        self.duration_max: float | None = None
        self.service = service
        self.start = start
        self.width = width

    @classmethod
    def over(cls, tally: Tally, start: float, width: int) -> Tally:
        """``tally`` seen as the bucket of ``width`` from ``start`` that holds it: the
        same maps, not copies (:func:`days_of`: neither changes any more)."""
        wider = cls.__new__(cls)
        wider.service, wider.start, wider.width = tally.service, start, width
        wider.seconds, wider.maintenance, wider.bins = tally.seconds, tally.maintenance, tally.bins
        wider.checks, wider.ok_checks, wider.worst = tally.checks, tally.ok_checks, tally.worst
        wider.duration_sum = tally.duration_sum
        wider.duration_min, wider.duration_max = tally.duration_min, tally.duration_max
        return wider

    @classmethod
    def of(cls, bucket: Bucket | Tally) -> Tally:
        """A tally holding what ``bucket`` holds (its maps copied: a Bucket's may be
        shared, and a Tally's go on changing)."""
        tally = cls(bucket.service, bucket.start, bucket.width)
        tally.add(bucket)
        return tally

    def spent(self, status: str, seconds: float, apart: bool) -> None:
        """Add ``seconds`` in ``status`` (in maintenance when ``apart``)."""
        into = self.maintenance if apart else self.seconds
        into[status] = into.get(status, 0.0) + seconds

    def checked(self, status: Status, duration: float, index: int) -> None:
        """Add one check that had ``status`` and took ``duration`` (histogram bin
        ``index``)."""
        self.checks += 1
        if status is Status.OK:
            self.ok_checks += 1
        worst = self.worst
        if worst is None or (status is not worst and status.severity > worst.severity):
            self.worst = status
        self.duration_sum += duration
        if self.duration_min is None or duration < self.duration_min:
            self.duration_min = duration
        if self.duration_max is None or duration > self.duration_max:
            self.duration_max = duration
        self.bins[index] = self.bins.get(index, 0) + 1

    def bucket(self) -> Bucket:
        """What has been added up, as a :class:`Bucket`."""
        return Bucket(
            self.service,
            self.start,
            self.width,
            checks=self.checks,
            ok_checks=self.ok_checks,
            seconds=dict(self.seconds),
            maintenance=dict(self.maintenance),
            worst=self.worst,
            duration_sum=self.duration_sum,
            duration_min=self.duration_min,
            duration_max=self.duration_max,
            bins=dict(self.bins),
        )


#: What the writer hands the store for a bucket: a :class:`Bucket`, or the
#: :class:`Tally` it added the checks up in (handed over as it is: making a Bucket of
#: each at every flush was a fifth of the rollups' cost on the event loop).
Delta = Bucket | Tally


def frozen(delta: Delta) -> Bucket:
    """``delta`` as a :class:`Bucket`."""
    return delta if isinstance(delta, Bucket) else delta.bucket()
