"""Downsampling a service's history for charts: at most N points over a time range.

The range is cut into N buckets of equal width; each non-empty bucket becomes one
point with the number of results in it, the worst status among them, and per
metric the minimum, mean and maximum. A range with no more results than N keeps
one point per result (same shape, min = avg = max), so a chart draws either alike.

**Gaps.** Time with no result (pymon was not running, or the service was not
checked) is no data, and a chart must not draw a line across it. A point is marked
``gap`` when more than twice the larger of the service's interval and the bucket
width passed between the last result before it and its own first result: the
result that should have come (or the bucket that should have held one) never did,
with room for a late check. Charts break their line and status bar before such a
point; the rule lives here only, so the page the server renders and the one the
browser redraws from the API break at the same points.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymon.model import Status

__all__ = ["Bucket", "Sample", "downsample", "gap_threshold"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One check result as the chart needs it."""

    at: float
    status: Status
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class Bucket:
    """One point of a downsampled history: results from ``start`` (inclusive) to ``end``;
    ``first`` and ``last`` are its own results' times, ``gap`` says no result came for
    too long before it (see the module's docstring)."""

    start: float
    end: float
    count: int = 0
    first: float = math.inf
    last: float = -math.inf
    gap: bool = False
    status: Status = Status.OK
    mins: dict[str, float] = field(default_factory=dict)
    maxs: dict[str, float] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, sample: Sample) -> None:
        """Fold ``sample`` into the bucket."""
        self.status = sample.status if self.count == 0 else Status.worst(self.status, sample.status)
        self.count += 1
        self.first = min(self.first, sample.at)
        self.last = max(self.last, sample.at)
        for name, value in sample.metrics.items():
            if not math.isfinite(value):
                continue  # a NaN would poison every aggregate of the bucket
            self.mins[name] = min(self.mins.get(name, value), value)
            self.maxs[name] = max(self.maxs.get(name, value), value)
            self.sums[name] = self.sums.get(name, 0.0) + value
            self.counts[name] = self.counts.get(name, 0) + 1

    def to_json(self) -> dict[str, Any]:
        """The point as the API shows it."""
        return {
            "start": self.start,
            "end": self.end,
            "count": self.count,
            "status": self.status.value,
            "gap": self.gap,
            "metrics": {
                name: {
                    "min": self.mins[name],
                    "avg": self.sums[name] / self.counts[name],
                    "max": self.maxs[name],
                }
                for name in sorted(self.counts)
            },
        }


def downsample(
    samples: Sequence[Sample],
    points: int,
    since: float | None = None,
    until: float | None = None,
    *,
    interval: float = 0.0,
) -> list[Bucket]:
    """At most ``points`` buckets covering ``since``..``until`` (default: the samples'
    own first and last times), oldest first; empty buckets are left out. With the
    service's check ``interval`` (seconds), a bucket after a hole is marked ``gap``.

    Samples outside the range are ignored. ``points`` must be at least 1.
    """
    if points < 1:
        raise ValueError("points must be at least 1")
    inside = sorted(
        (
            s
            for s in samples
            if (since is None or s.at >= since) and (until is None or s.at <= until)
        ),
        key=lambda s: s.at,
    )
    if not inside:
        return []
    if len(inside) <= points:
        return _mark_gaps([_single(s) for s in inside], gap_threshold(interval, 0.0))
    low = inside[0].at if since is None else since
    high = inside[-1].at if until is None else until
    width = (high - low) / points
    if width <= 0:
        bucket = Bucket(low, high)
        for s in inside:
            bucket.add(s)
        return [bucket]
    buckets: dict[int, Bucket] = {}
    for s in inside:
        # The last instant belongs to the last bucket, not to one past it.
        index = min(points - 1, int((s.at - low) / width))
        if index not in buckets:
            buckets[index] = Bucket(low + index * width, low + (index + 1) * width)
        buckets[index].add(s)
    return _mark_gaps([buckets[i] for i in sorted(buckets)], gap_threshold(interval, width))


def gap_threshold(interval: float, width: float) -> float:
    """How long without a result is a gap: twice the longer of the check ``interval``
    and the bucket ``width`` (0 when both are 0: then nothing is a gap)."""
    return 2 * max(interval, width, 0.0)


def _mark_gaps(buckets: list[Bucket], threshold: float) -> list[Bucket]:
    if threshold > 0:
        for before, after in itertools.pairwise(buckets):
            after.gap = after.first - before.last > threshold
    return buckets


def _single(sample: Sample) -> Bucket:
    bucket = Bucket(sample.at, sample.at)
    bucket.add(sample)
    return bucket
