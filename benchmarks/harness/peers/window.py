"""The window a peer is measured over: whole seconds, after the point's warm-up."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.harness.options import BenchOptions

__all__ = ["Window", "measure_window"]


@dataclass(frozen=True, slots=True)
class Window:
    """A window's wall-clock bounds, the CPU the peer took in it, and the CPU of the
    bench's own thread (where a peer's driver runs)."""

    start: float
    end: float
    cpu: float
    bench_cpu: float

    @property
    def seconds(self) -> float:
        """Its length."""
        return self.end - self.start

    def holds(self, started: float) -> bool:
        """Whether a check that started at ``started`` falls in it."""
        return self.start <= started < self.end


async def measure_window(options: BenchOptions, cpu: Callable[[], float]) -> Window:
    """Wait out the warm-up, then measure ``cpu()`` over the point's duration.

    Both bounds fall on whole seconds, because Nagios stamps a check's start in
    whole seconds: a check then falls in the window by that stamp exactly.
    """
    start = math.ceil(time.time() + options.effective_warmup)
    end = start + math.ceil(options.duration)
    await asyncio.sleep(start - time.time())
    before, bench_before = cpu(), time.thread_time()
    await asyncio.sleep(end - time.time())
    return Window(start, end, cpu() - before, time.thread_time() - bench_before)
