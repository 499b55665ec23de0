"""The uptime gauges of ``/metrics`` and the uptime report at many services, in process
on the fake engine port seeded with the buckets they read.

``--services`` tcp services, each with 31 days of day buckets and hour buckets for
the last 31 days' edges (those a window ending now reads: the last two days' hours
and the hours of the 7 d and 30 d windows' first days). The fake port's own
``rollups`` scans every bucket; here it is indexed by bucket start, as a store's
index would be, so the figures are pymon's (reading, summarising, rendering), not
the fake's scan. Times a cold scrape (the gauges computed), a warm one (within the
minute: cached) and the 30-day report as JSON and CSV; with ``--days 365`` a year of
day buckets and the 1-year report too. From the repository root::

    PYTHONPATH=src:. .venv/bin/python -m benchmarks.uptime --services 10000
    PYTHONPATH=src:. .venv/bin/python -m benchmarks.uptime --services 2000 --days 365
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from tests.support.port import SOME_TIME, FakePort
from tests.web.helpers import app_client

from pymon.config.load import load_config_text
from pymon.engine.ports import ServiceView
from pymon.uptime import DAY, HOUR, Bucket
from pymon.web.gauges import UptimeGauges


@dataclass
class IndexedPort(FakePort):
    """The fake port with its buckets indexed by (width, start) then service, and its
    services listed from a dict (the fake's own lookup is linear per service)."""

    index: dict[tuple[int, float], dict[str, Bucket]] = field(default_factory=dict)

    async def rollups(
        self, names: Sequence[str] | None, since: float, until: float, width: int = HOUR
    ) -> list[Bucket]:
        out: list[Bucket] = []
        start = since // width * width
        while start < until:
            found = self.index.get((width, start), {})
            if names is None:
                out += found.values()
            else:
                out += [b for name in names if (b := found.get(name)) is not None]
            start += width
        return out

    async def services(self) -> list[ServiceView]:
        return [ServiceView(s, self.states[s.name]) for s in self.config.services]


def seeded(services: int, days: int = 31) -> IndexedPort:
    lines = ["services:"] + [
        f"  - {{name: s{i}, type: tcp, host: 127.0.0.1, port: 9, sla: 99.9}}"
        for i in range(services)
    ]
    port = IndexedPort(load_config_text("\n".join(lines)))
    now = SOME_TIME
    midnight = now // DAY * DAY
    hour_ok = {"ok": float(HOUR)}
    day_ok = {"ok": DAY - 60.0, "failed": 60.0}
    hours: set[float] = set()
    firsts = [now - DAY, now - 7 * DAY, now - 30 * DAY] + ([now - days * DAY] if days > 31 else [])
    for first in firsts:
        start = first // HOUR * HOUR
        end = (first // DAY + 1) * DAY if first < now - DAY else now
        while start < end:
            hours.add(start)
            start += HOUR
    names = [s.name for s in port.config.services]
    for start in sorted(hours):
        port.index[(HOUR, start)] = {n: Bucket(n, start, HOUR, 60, 60, hour_ok) for n in names}
    for k in range(1, max(days, 31) + 1):
        start = midnight - k * DAY
        port.index[(DAY, start)] = {n: Bucket(n, start, DAY, 1440, 1439, day_ok) for n in names}
    return port


async def timed(label: str, client: object, path: str) -> float:
    t0 = time.perf_counter()
    answer = await client.get(path)  # type: ignore[attr-defined]
    took = time.perf_counter() - t0
    assert answer.status_code == 200, answer.text[:200]
    print(f"{label:<34} {took * 1000:9.0f} ms  {len(answer.content) / 1e6:6.1f} MB")
    return took


async def main(services: int, days: int) -> None:
    t0 = time.perf_counter()
    port = seeded(services, days)
    buckets = sum(len(v) for v in port.index.values())
    print(f"seeded {services} services, {buckets} buckets in {time.perf_counter() - t0:.1f} s")
    async with app_client(port) as client:
        t0 = time.perf_counter()
        await UptimeGauges().samples(port)
        print(f"{'gauges alone (3 windows)':<34} {(time.perf_counter() - t0) * 1000:9.0f} ms")
        await timed("/metrics cold (gauges computed)", client, "/metrics")
        await timed("/metrics warm (cached)", client, "/metrics")
        await port.clock.advance(60)
        await timed("/metrics after 60 s (again)", client, "/metrics")
        await timed("report 30d JSON", client, "/api/v1/reports/uptime?since=30d")
        await timed("report 30d CSV", client, "/api/v1/reports/uptime?since=30d&format=csv")
        await timed("Reports page 30d", client, "/reports")
        if days > 31:
            await timed(f"report {days}d JSON", client, f"/api/v1/reports/uptime?since={days}d")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=31, help="day buckets kept (365: a year)")
    args = parser.parse_args()
    asyncio.run(main(args.services, args.days))
