"""A service's uptime over a window, for the API and the service page: the window
read from a request (``window=30d`` or ``since``/``until``), the buckets fetched
through the port (day buckets for whole days, hours at the edges) and summarized
by time (docs/uptime.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pymon.durations import parse_duration
from pymon.uptime import DAY, Bucket, Uptime, by_service, layout, summarize

if TYPE_CHECKING:
    from pymon.engine.ports import EnginePort

__all__ = [
    "MAX_WINDOW",
    "SHOWN_WINDOWS",
    "parse_window",
    "read_buckets",
    "uptime_json",
    "uptime_of",
]

#: The longest window one question may cover (the default retention, 400 days).
MAX_WINDOW = 400 * DAY

#: The windows the service page shows, by label.
SHOWN_WINDOWS = (("24h", DAY), ("7d", 7 * DAY), ("30d", 30 * DAY))

_YEARS = re.compile(r"\s*(\d+)\s*y\s*")


def parse_window(text: str) -> float:
    """Seconds from ``24h``, ``7d``, ``30d``, ``90d``, ``1y`` (365 days) or any
    duration; ValueError saying why for anything else or a window over
    :data:`MAX_WINDOW`, or an empty one."""
    years = _YEARS.fullmatch(text)
    seconds = int(years[1]) * 365.0 * DAY if years else parse_duration(text)
    if seconds <= 0:
        raise ValueError("a window must be longer than zero")
    if seconds > MAX_WINDOW:
        raise ValueError(f"{text[:50]!r} is longer than the most a window may be (400d)")
    return seconds


async def read_buckets(
    port: EnginePort, names: Sequence[str] | None, since: float, until: float
) -> list[Bucket]:
    """The buckets of ``names`` (every service when None) that tile ``since``..``until``
    as :func:`pymon.uptime.layout` says: day buckets for whole days, hours at the edges.
    The API, the service page, reports, badges and ``/metrics`` all read this way."""
    found: list[Bucket] = []
    for piece in layout(since, until):
        # Only the piece's own buckets: a day bucket read for the middle days must
        # not be counted again at an edge read in hours.
        found += [
            b
            for b in await port.rollups(names, piece.start, piece.end, piece.width)
            if b.start < piece.end and b.end > piece.start
        ]
    return found


async def uptime_of(
    port: EnginePort,
    names: list[str],
    since: float,
    until: float,
    *,
    include_maintenance: bool = False,
) -> dict[str, Uptime]:
    """Each of ``names``' uptime over ``since``..``until``, by name (every name has one,
    all no data when nothing was recorded)."""
    found = by_service(await read_buckets(port, names, since, until))
    return {
        name: summarize(
            name,
            found.get(name, []),
            since,
            until,
            include_maintenance=include_maintenance,
            now=port.now(),
        )
        for name in names
    }


def uptime_json(uptime: Uptime) -> dict[str, Any]:
    """An :class:`Uptime` as the API answers it: its fields, ``uptime_pct`` and
    ``downtime_minutes``."""
    return {
        "service": uptime.service,
        "since": uptime.since,
        "until": uptime.until,
        "uptime_pct": uptime.uptime_pct,
        "downtime_minutes": uptime.downtime_minutes,
        "up": uptime.up,
        "down": uptime.down,
        "unknown": uptime.unknown,
        "maintenance": uptime.maintenance,
        "no_data": uptime.no_data,
        "checks": uptime.checks,
        "ok_checks": uptime.ok_checks,
        "worst": None if uptime.worst is None else uptime.worst.value,
        "response_avg": uptime.response_avg,
        "response_p95": uptime.response_p95,
        "response_min": uptime.response_min,
        "response_max": uptime.response_max,
    }
