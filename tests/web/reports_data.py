"""A fake port with 31 days of rollups and incidents, for the report's API, page,
command line and gauges. Its hour and day buckets agree (each day is the sum of its
hours), so any window reads the same figures whatever the buckets' widths:

* ``web`` (tags web, public): always up, no target;
* ``api`` (tag web, ``sla: 99.9``): down 03:00-04:00 UTC every day (an incident
  each time): 23/24 up, so it misses its target;
* ``db`` (``sla: 99``): in maintenance (and failing) 02:00-03:00 UTC every day:
  100 % up, met, unless maintenance counts (then 23/24, missed).

Time is the fake port's (``SOME_TIME``, 20:26:40 UTC); the hour holding it has no
bucket yet.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pymon.model import Incident, Status
from pymon.uptime import DAY, HOUR, Bucket
from pymon.web.app import create_app
from pymon.web.server import WebServer
from tests.support.port import SOME_TIME, FakePort, fake_port

__all__ = ["CONFIG", "DAYS", "MIDNIGHT", "NOW", "seeded_port", "serving"]

CONFIG = """
services:
  - {name: web, type: tcp, host: 127.0.0.1, port: 9, tags: [web, public]}
  - {name: api, type: tcp, host: 127.0.0.1, port: 9, tags: [web], sla: 99.9}
  - {name: db, type: tcp, host: 127.0.0.1, port: 9, sla: 99}
"""
NOW = SOME_TIME
MIDNIGHT = NOW // DAY * DAY
DAYS = 31


def _hour(service: str, start: float) -> Bucket:
    at = int(start % DAY // HOUR)
    if service == "api" and at == 3:
        return Bucket(service, start, HOUR, 60, 0, {"failed": HOUR}, worst=Status.FAILED)
    if service == "db" and at == 2:
        return Bucket(service, start, HOUR, 60, 0, {}, {"error": HOUR}, worst=Status.ERROR)
    return Bucket(service, start, HOUR, 60, 60, {"ok": HOUR}, worst=Status.OK)


def _day(hours: list[Bucket]) -> Bucket:
    first = hours[0]
    seconds: dict[str, float] = {}
    maintenance: dict[str, float] = {}
    for h in hours:
        for key, value in h.seconds.items():
            seconds[key] = seconds.get(key, 0.0) + value
        for key, value in h.maintenance.items():
            maintenance[key] = maintenance.get(key, 0.0) + value
    checks = sum(h.checks for h in hours)
    ok = sum(h.ok_checks for h in hours)
    return Bucket(first.service, first.start, DAY, checks, ok, seconds, maintenance)


def seeded_port(config: str = CONFIG) -> FakePort:
    """A fake port over ``config`` holding the rollups and incidents above."""
    port = fake_port(config)
    last_hour = NOW // HOUR * HOUR
    for service in ("web", "api", "db"):
        start = MIDNIGHT - DAYS * DAY
        day_hours: list[Bucket] = []
        while start < last_hour:
            bucket = _hour(service, start)
            port.buckets.append(bucket)
            day_hours.append(bucket)
            if len(day_hours) == 24:
                port.buckets.append(_day(day_hours))
                day_hours = []
            start += HOUR
        if day_hours:
            port.buckets.append(_day(day_hours))
    for k in range(DAYS + 1):
        opened = MIDNIGHT - DAYS * DAY + k * DAY + 3 * HOUR
        if opened + HOUR <= NOW:
            port.past_incidents.append(
                Incident(f"api-{k}", "api", opened, Status.FAILED, Status.FAILED, opened + HOUR)
            )
    return port


@asynccontextmanager
async def serving(port: FakePort) -> AsyncIterator[str]:
    """The app over ``port`` served by a real web server on 127.0.0.1: its URL."""
    server = WebServer(create_app(port), "127.0.0.1", 0)
    bound = await server.start()
    try:
        yield f"http://127.0.0.1:{bound}"
    finally:
        await server.stop()
