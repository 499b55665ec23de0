"""The uptime gauges ``/metrics`` shows: each service's uptime over the last 24 h,
7 d and 30 d, read through the port from the buckets a report of each window reads
(:func:`pymon.uptime.layout`), and kept for :data:`TTL` seconds, so a scrape every
15 s of 10,000 services reads the buckets about once a minute, not at every scrape."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pymon.locations import listed
from pymon.uptime import DAY, HOUR, Piece, layout, total

if TYPE_CHECKING:
    from pymon.engine.ports import EnginePort

__all__ = ["CHUNK", "TTL", "WINDOWS", "UptimeGauges", "UptimeSample", "atoms"]

log = logging.getLogger("pymon.web")

WINDOWS: tuple[tuple[str, float], ...] = (("24h", 24 * HOUR), ("7d", 7 * DAY), ("30d", 30 * DAY))
"""The windows the gauges cover: label, then seconds back from now."""

TTL = 60.0
"""How long computed gauges are shown before they are read again (engine clock)."""

CHUNK = 500
"""Services read and summarised at a time: the loop gets a turn between chunks (10,000
services take seconds of CPU in all) and only one chunk's buckets are held at once."""


@dataclass(frozen=True, slots=True)
class UptimeSample:
    """One service's uptime ratio (0-1) over one window; None when it had no data."""

    service: str
    window: str
    ratio: float | None


class UptimeGauges:
    """The gauges, computed at most once per :data:`TTL` (and again after a reload)."""

    def __init__(self) -> None:
        self._at: float | None = None
        self._checksum = ""
        self._samples: list[UptimeSample] = []
        self._lock = asyncio.Lock()

    async def samples(self, port: EnginePort) -> list[UptimeSample]:
        """The gauges, fresh within :data:`TTL`; scrapes that find them stale together
        wait for one computation."""
        async with self._lock:
            now, checksum = port.now(), port.config.checksum
            if self._at is None or now - self._at >= TTL or checksum != self._checksum:
                try:
                    self._samples = await _compute(port, now)
                except Exception as exc:
                    # A scrape without the gauges beats no scrape: the rest of
                    # /metrics (pymon_store_failures among it) says what is wrong.
                    # The last figures stay shown; the next try is a TTL away.
                    log.error("metrics: cannot read the uptime rollups: %s", exc)
                self._at, self._checksum = now, checksum
            return self._samples


def atoms(spans: Sequence[Piece]) -> list[Piece]:
    """The disjoint parts ``spans`` (pieces of several windows, which overlap) cut each
    other into, per bucket width: every piece is a run of them, so each part is read
    and summarised once however many windows share it."""
    out: list[Piece] = []
    for width in sorted({p.width for p in spans}):
        same = [p for p in spans if p.width == width]
        edges = sorted({edge for p in same for edge in (p.start, p.end)})
        out += [
            Piece(width, a, b)
            for a, b in itertools.pairwise(edges)
            if any(p.start <= a and b <= p.end for p in same)
        ]
    return out


async def _compute(port: EnginePort, now: float) -> list[UptimeSample]:
    """Each window's up and down time is the sum over the parts it is made of: the
    24 h, 7 d and 30 d windows share the hours since midnight, and the 7 d days are
    inside the 30 d ones, so ~60 buckets a service are summarised instead of ~110."""
    windows = [(label, layout(now - span, now)) for label, span in WINDOWS]
    parts = atoms([p for _, made_of in windows for p in made_of])
    inside = {
        label: [
            i
            for i, part in enumerate(parts)
            if any(
                p.width == part.width and p.start <= part.start and part.end <= p.end
                for p in made_of
            )
        ]
        for label, made_of in windows
    }
    names = [s.name for s in listed(port.config.services)]
    samples: list[UptimeSample] = []
    for first in range(0, len(names), CHUNK):
        chunk = names[first : first + CHUNK]
        # Up and down seconds per service, per part.
        times: dict[str, list[tuple[float, float]]] = {n: [(0.0, 0.0)] * len(parts) for n in chunk}
        for i, part in enumerate(parts):
            found = await port.totals(chunk, part.start, part.end, part.width, now=now)
            for name, totals in found.items():
                if name in times:
                    summary = total(name, [totals], part.start, part.end)
                    times[name][i] = (summary.up, summary.down)
        for name in chunk:
            for label, _ in windows:
                up = sum(times[name][i][0] for i in inside[label])
                down = sum(times[name][i][1] for i in inside[label])
                ratio = up / (up + down) if up + down > 0 else None
                samples.append(UptimeSample(name, label, ratio))
        # Let checks and requests run between chunks.
        await asyncio.sleep(0)
    return samples
