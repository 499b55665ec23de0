"""Downsampling a service's history for charts: at most N points over a time range.

The range is cut into N buckets of equal width; each non-empty bucket becomes one
point with the number of results in it, the worst status among them, and per
metric the minimum, mean and maximum. A range with no more results than N keeps
one point per result (same shape, min = avg = max), so a chart draws either alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymon.model import Status

__all__ = ["Bucket", "Sample", "downsample"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One check result as the chart needs it."""

    at: float
    status: Status
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class Bucket:
    """One point of a downsampled history: results from ``start`` (inclusive) to ``end``."""

    start: float
    end: float
    count: int = 0
    status: Status = Status.OK
    mins: dict[str, float] = field(default_factory=dict)
    maxs: dict[str, float] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, sample: Sample) -> None:
        """Fold ``sample`` into the bucket."""
        self.status = sample.status if self.count == 0 else Status.worst(self.status, sample.status)
        self.count += 1
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
) -> list[Bucket]:
    """At most ``points`` buckets covering ``since``..``until`` (default: the samples'
    own first and last times), oldest first; empty buckets are left out.

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
        return [_single(s) for s in inside]
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
    return [buckets[i] for i in sorted(buckets)]


def _single(sample: Sample) -> Bucket:
    bucket = Bucket(sample.at, sample.at)
    bucket.add(sample)
    return bucket
