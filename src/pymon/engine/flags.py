"""Each service's maintenance flag, cached until it next flips, and the instants it flips.

Working out whether windows cover a service (cron and weekly windows included) is
not free, and a check asks it every run; the answer holds until
:func:`~pymon.engine.maintenance.next_change`, so it is kept until then. The flip
instants sit in a heap, so the runtime can re-evaluate a service the moment a
window starts or ends for it (a held notice goes out at the window's end, not at the
next check).
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable, Sequence

from pymon.clock import Clock, sleep_or_wake
from pymon.config.schema import ServiceConfig
from pymon.config.windows import MaintenanceWindow
from pymon.engine.maintenance import DEFAULT_HORIZON, next_change, windows_for

__all__ = ["MaintenanceFlags"]

# The longest the sweeper sleeps with nothing due (a new flip wakes it anyway).
_IDLE = 3600.0


class MaintenanceFlags:
    """Per service: in maintenance or not, and until when that holds."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._flags: dict[str, tuple[bool, float]] = {}
        self._due: list[tuple[float, str]] = []
        self._wake = asyncio.Event()

    def covered(
        self, service: ServiceConfig, windows: Sequence[MaintenanceWindow], now: float
    ) -> bool:
        """Whether ``windows`` cover ``service`` at ``now`` (cached until it flips)."""
        cached = self._flags.get(service.name)
        if cached is not None and cached[1] > now:
            return cached[0]
        flag = bool(windows_for(windows, service.name, service.tags, now))
        change = next_change(windows, service.name, service.tags, now) if windows else None
        until = change if change is not None else now + DEFAULT_HORIZON
        self._flags[service.name] = (flag, until)
        heapq.heappush(self._due, (until, service.name))
        if self._due[0][1] == service.name:
            self._wake.set()
        return flag

    def forget(self) -> None:
        """Drop every cached flag (the windows or the services changed)."""
        self._flags.clear()

    async def sweep(self, flipped: Callable[[str], None]) -> None:
        """Call ``flipped(name)`` when a service's flag may have flipped; runs until cancelled."""
        while True:
            now = self._clock.time()
            while self._due and self._due[0][0] <= now:
                _, name = heapq.heappop(self._due)
                cached = self._flags.get(name)
                if cached is not None and cached[1] > now:
                    continue  # a stale entry: recomputed since
                flipped(name)
            self._wake.clear()
            delay = self._due[0][0] - now if self._due else _IDLE
            await sleep_or_wake(self._clock, self._wake, min(delay, _IDLE))
