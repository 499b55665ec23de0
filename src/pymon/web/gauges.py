"""The uptime gauges ``/metrics`` shows: each service's uptime over the last 24 h,
7 d and 30 d, read from the rollups through the port (:mod:`pymon.web.reporting`)
and kept for :data:`TTL` seconds, so a scrape every 15 s of 10,000 services reads
the buckets about once a minute, not at every scrape."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pymon.reports import targets_of
from pymon.uptime import DAY, HOUR
from pymon.web.reporting import read_report

if TYPE_CHECKING:
    from pymon.engine.ports import EnginePort

__all__ = ["CHUNK", "TTL", "WINDOWS", "UptimeGauges", "UptimeSample"]

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


async def _compute(port: EnginePort, now: float) -> list[UptimeSample]:
    targets = targets_of(port.config.services)
    samples: list[UptimeSample] = []
    for first in range(0, len(targets), CHUNK):
        chunk = targets[first : first + CHUNK]
        for label, span in WINDOWS:
            report = await read_report(port, chunk, now - span, now)
            for row in report.services:
                pct = row.uptime.uptime_pct
                ratio = None if pct is None else pct / 100
                samples.append(UptimeSample(row.service, label, ratio))
        # Let checks and requests run between chunks.
        await asyncio.sleep(0)
    return samples
