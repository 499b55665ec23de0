"""Rollups across a restart in the middle of an hour: a real daemon on a fake clock
checks a real TCP listener, over a real SQLite file; it is stopped halfway through
the hour and a new one goes on from the stored state. The hour's seconds are the
time its results covered, no more (nothing counted twice) and no less (the span
across the restart is credited once, to the last stored result)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pymon.config.load import load_config_text
from pymon.daemon import Daemon
from pymon.store.sql import SqlStore
from pymon.uptime import DAY, HOUR, summarize, total
from tests.support.clock import FakeClock
from tests.support.servers import TcpListener
from tests.support.waiting import wait_for

HOUR_START = 1_800_000_000 // HOUR * HOUR
STEP = 5.0


def config(db: Path, port: int) -> str:
    return f"""
storage: {{url: "sqlite:///{db}", flush_interval: 50ms}}
web: {{enabled: false}}
defaults: {{interval: 60s, timeout: 30s}}
services:
  - {{name: web, type: tcp, host: 127.0.0.1, port: {port}}}
"""


async def run_for(d: Daemon, clock: FakeClock, seconds: float) -> None:
    """Move the fake clock on a step at a time, letting each step's checks finish."""
    end = clock.monotonic() + seconds
    while clock.monotonic() < end:
        await clock.advance(STEP)
        await wait_for(lambda: d.runtime.scheduler.in_flight == 0)


async def test_a_restart_in_the_middle_of_an_hour_neither_loses_nor_doubles_time(
    tmp_path: Path, listener: TcpListener
) -> None:
    db = tmp_path / "p.db"
    text = config(db, listener.port)
    first_clock = FakeClock(wall_start=HOUR_START + 600)
    first = Daemon(load_config_text(text), clock=first_clock)
    await first.start()
    try:
        while first.runtime.states["web"].seq == 0:
            await run_for(first, first_clock, STEP)
        began = first.runtime.states["web"].last_check
        await run_for(first, first_clock, 1200)
    finally:
        await first.stop()
    assert began is not None and HOUR_START + 600 <= began <= HOUR_START + 660
    stopped = first.runtime.states["web"]
    assert stopped.last_check is not None and stopped.seq >= 19

    # Up again 10 s later, halfway through the hour: it goes on from the stored state.
    second_clock = FakeClock(wall_start=first_clock.time() + 10)
    second = Daemon(load_config_text(text), clock=second_clock)
    await second.start()
    try:
        assert second.runtime.states["web"].last_check == stopped.last_check
        await run_for(second, second_clock, 1200)
        # A report's way (totals, mostly summed in the database) says what the
        # buckets say, the writer's unwritten part included.
        window = (HOUR_START + 900.0, HOUR_START + HOUR)
        sums = await second.runtime.totals(["web"], *window, HOUR)
        read = await second.runtime.rollups(["web"], *window, HOUR)
        by_totals, by_buckets = (
            total("web", sums.values(), *window),
            summarize("web", read, *window),
        )
        assert by_totals.checks == by_buckets.checks > 0
        assert by_totals.up == pytest.approx(by_buckets.up) and by_totals.up > 0
    finally:
        await second.stop()
    final = second.runtime.states["web"]
    assert final.last_check is not None and final.last_check < HOUR_START + HOUR

    store = SqlStore(f"sqlite:///{db}")
    await store.open()
    try:
        (hour,) = await store.rollups(["web"], HOUR_START, HOUR_START + HOUR, HOUR)
        (day,) = await store.rollups(["web"], HOUR_START, HOUR_START + HOUR, DAY)
    finally:
        await store.close()
    # The first result has no span; every later one adds the time since the one
    # before, the one after the restart included: from the first to the last result.
    covered = final.last_check - began
    assert hour.seconds == {"ok": pytest.approx(covered)}
    assert hour.checks == final.seq and hour.ok_checks == final.seq
    assert day.seconds == hour.seconds and day.checks == hour.checks
    up = summarize("web", [hour], HOUR_START, HOUR_START + HOUR)
    assert up.uptime_pct == 100.0
    assert up.no_data == pytest.approx(HOUR - covered)
