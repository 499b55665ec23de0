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
from pymon.uptime import DAY, Totals, Uptime, layout, total

if TYPE_CHECKING:
    from pymon.engine.ports import EnginePort

__all__ = [
    "MAX_WINDOW",
    "SHOWN_WINDOWS",
    "parse_window",
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


async def uptime_of(
    port: EnginePort,
    names: Sequence[str] | None,
    since: float,
    until: float,
    *,
    include_maintenance: bool = False,
) -> dict[str, Uptime]:
    """Uptime over ``since``..``until`` of each of ``names`` (every name has one, all no
    data when nothing was recorded), or of every service with buckets when None.

    The window is read as :func:`pymon.uptime.layout` says (day buckets for whole days,
    hours at the edges), each piece added up by the store (:meth:`EnginePort.totals`),
    so a year of 10,000 services is ~365 rows a service summed in the database, not
    a Bucket per row. The API, the service page, reports and ``/metrics`` read this way.
    """
    now = port.now()
    parts: dict[str, list[Totals]] = {}
    for piece in layout(since, until):
        found = await port.totals(names, piece.start, piece.end, piece.width, now=now)
        for name, totals in found.items():
            parts.setdefault(name, []).append(totals)
    every = parts if names is None else names
    return {
        n: total(n, parts.get(n, ()), since, until, include_maintenance=include_maintenance)
        for n in every
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
