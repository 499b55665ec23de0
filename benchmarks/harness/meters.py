"""What the harness reads on the pymon side: the store's batches, the loop's lag, the
garbage collector's pauses, memory, and the machine the run shares."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import platform
import re
import resource
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pymon import __version__
from pymon.model import ServiceState, Status
from pymon.store.base import ResultRecord, Store

__all__ = [
    "GcMeter",
    "MeteredStore",
    "children_cpu",
    "db_thread_cpu",
    "loadavg",
    "machine_busy",
    "machine_info",
    "probe_loop_lag",
    "rss_bytes",
]

# Loop-lag probe period: short enough to see a stall, long enough to cost nothing.
LAG_PROBE_PERIOD = 0.05


class MeteredStore:
    """A Store proxy that times each batch and keeps the window's results.

    Results are attributed to the window by their ``started_at`` (wall clock), so
    a check that started inside the window counts even if its batch lands after.
    Everything but ``write`` is passed through to the wrapped store unchanged.
    """

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.window: tuple[float, float] = (math.inf, math.inf)
        # (status, lateness, message, duration) of each result that started in the window.
        self.results: list[tuple[Status, float, str, float]] = []
        self.batches: list[tuple[float, int, float]] = []  # (start, results, seconds)
        # Per second since ``origin`` (the daemon's start): [checks, max lateness].
        self.origin = math.inf
        self.seconds: dict[int, list[float]] = {}

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes not found here: the rest of the Store protocol.
        return getattr(self.inner, name)

    async def write(
        self,
        states: Sequence[ServiceState],
        results: Sequence[ResultRecord],
        *rest: Any,
        **named: Any,
    ) -> None:
        """Write through, timing the batch and keeping results that started in the window.

        Whatever else the Store protocol's ``write`` takes (events, incidents...) is
        passed on untouched, so the protocol can grow without this proxy knowing.
        """
        start = time.time()
        t0 = time.perf_counter()
        await self.inner.write(states, results, *rest, **named)
        self.batches.append((start, len(results), time.perf_counter() - t0))
        lo, hi = self.window
        keep = self.results.append
        origin, seconds = self.origin, self.seconds
        for r in results:
            if lo <= r.started_at < hi:
                keep((r.status, r.lateness, r.message, r.duration))
            tally = seconds.setdefault(int(r.started_at - origin), [0, 0.0])
            tally[0] += 1
            tally[1] = max(tally[1], r.lateness)


class GcMeter:
    """A ``gc.callbacks`` hook timing every collection while installed."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []  # (generation, seconds)
        self._t0: float | None = None

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        elif self._t0 is not None:
            self.pauses.append((info["generation"], time.perf_counter() - self._t0))
            self._t0 = None


async def probe_loop_lag(samples: list[float], period: float = LAG_PROBE_PERIOD) -> None:
    """Sleep ``period`` over and over; how much later than asked we wake is the loop's lag."""
    loop = asyncio.get_running_loop()
    while True:
        t0 = loop.time()
        await asyncio.sleep(period)
        samples.append(max(0.0, loop.time() - t0 - period))


def rss_bytes(pid: int | None = None) -> int:
    """VmRSS of process ``pid`` (default: this one) from /proc (0 where there is none)."""
    try:
        text = Path(f"/proc/{pid or 'self'}/status").read_text()
    except OSError:
        return 0
    m = re.search(r"^VmRSS:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(m[1]) * 1024 if m else 0


def children_cpu() -> float:
    """CPU seconds of this process's children that have exited and been waited for.

    Over a window that is what the programs a check ran took (a plugin's fork and
    exec): pymon pays for them as a monitor that runs plugins does.
    """
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy() -> float:
    """CPU seconds all cores spent not idle since boot, from /proc/stat (0 without it).

    The difference over the window, minus pymon's and the target's own CPU, is what
    other processes took: a benchmark on a busy machine says so in its report.
    """
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


# aiosqlite runs each connection in a thread of its own; Python names a thread after
# its target, so this is how that thread is told from the rest.
# aiosqlite's thread (reads, schema, leases) and the store's batch writer's.
_DB_THREADS = ("(_connection_worker_thread)", "pymon-sqlite-batch")


def db_thread_cpu() -> dict[int, float]:
    """CPU seconds so far of each of this process's SQLite threads, by native thread id.

    That is where SQLite itself runs (statements, pages, the WAL's writes and fsyncs),
    so the difference over a window is the database's share of the process's CPU; a
    thread that ends inside the window takes its seconds with it (an undercount).
    Empty where there is no /proc or no such thread.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    seconds: dict[int, float] = {}
    for thread in threading.enumerate():
        named = thread.name.endswith(_DB_THREADS[0]) or thread.name.startswith(_DB_THREADS[1])
        if not named or thread.native_id is None:
            continue
        try:
            stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
        except OSError:
            continue
        # Fields after the command name (which may hold spaces): utime, stime are 14, 15.
        fields = stat.rsplit(")", 1)[1].split()
        seconds[thread.native_id] = (int(fields[11]) + int(fields[12])) / ticks
    return seconds


def loadavg() -> float:
    """The 1-minute load average (-1 where there is none)."""
    # Another busy process on the machine skews every figure; the report says so.
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return -1.0


def machine_info() -> dict[str, Any]:
    """CPU model, core count, Python, loop and library versions: to read figures against."""
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import aiohttp
    import sqlalchemy

    return {
        "cpu_model": model,
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "pymon": __version__,
        "aiohttp": aiohttp.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "sqlite": sqlite3.sqlite_version,
    }
