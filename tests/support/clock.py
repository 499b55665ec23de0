"""A fake clock: time moves only when a test says so, and sleepers wake in order."""

from __future__ import annotations

import asyncio
import heapq

__all__ = ["FakeClock", "settle"]


async def settle(rounds: int = 50) -> None:
    """Let every ready task run until the loop is quiet (no real time passes)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class FakeClock:
    """Implements ``pymon.clock.Clock``; ``advance`` moves time and wakes due sleepers."""

    def __init__(self, wall_start: float = 1_700_000_000.0) -> None:
        self._mono = 0.0
        self._wall_start = wall_start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0

    def time(self) -> float:
        return self._wall_start + self._mono

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._sleepers, (self._mono + max(0.0, seconds), self._seq, fut))
        await fut

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking sleepers at their deadlines in order."""
        target = self._mono + seconds
        await settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, fut = heapq.heappop(self._sleepers)
            self._mono = max(self._mono, deadline)
            if not fut.done():
                fut.set_result(None)
            await settle()
        self._mono = target
        await settle()
