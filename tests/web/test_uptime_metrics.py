"""/metrics' uptime gauges per service and window, from the fake port's seeded rollups,
and their one-minute cache."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pymon.errors import StoreError
from pymon.reports import Target
from pymon.uptime import DAY, HOUR, Bucket
from pymon.web import gauges
from pymon.web.gauges import WINDOWS, UptimeGauges
from pymon.web.reporting import read_report
from tests.support.port import FakePort, fake_port
from tests.web.helpers import app_client
from tests.web.reports_data import seeded_port


async def scrape(client: httpx.AsyncClient) -> dict[str, dict[tuple[str, ...], float]]:
    answer = await client.get("/metrics")
    assert answer.status_code == 200
    return {
        family.name: {tuple(sorted(s.labels.values())): s.value for s in family.samples}
        for family in text_string_to_metric_families(answer.text)
    }


def ratios(families: dict[str, dict[tuple[str, ...], float]]) -> dict[tuple[str, ...], float]:
    return families["pymon_service_uptime_ratio"]


async def test_uptime_gauges_per_service_and_window() -> None:
    async with app_client(seeded_port()) as client:
        families = await scrape(client)
    found = ratios(families)
    # api is down one hour a day; in the last 24 h (hour buckets) that is 1 h of the
    # 23 h 26 min with data, over 30 days one hour of every 24.
    assert found[("24h", "api")] == pytest.approx(1 - 3600 / (24 * 3600 - 1600))
    assert found[("30d", "api")] == pytest.approx(23 / 24, abs=1e-3)
    assert found[("7d", "api")] == pytest.approx(23 / 24, abs=1e-3)
    # db's daily failure is in maintenance: left out.
    assert {found[(w, "db")] for w in ("24h", "7d", "30d")} == {1.0}
    assert found[("30d", "web")] == 1.0
    assert len(found) == 9
    targets = families["pymon_service_sla_target_ratio"]
    assert targets == {("api",): pytest.approx(0.999), ("db",): pytest.approx(0.99)}


async def test_the_gauges_are_kept_a_minute_then_read_again() -> None:
    port: FakePort = seeded_port()
    async with app_client(port) as client:
        before = ratios(await scrape(client))
        port.buckets.clear()
        await port.clock.advance(59)
        assert ratios(await scrape(client)) == before
        await port.clock.advance(1)
        # Read again: no bucket left, so no service has data and no gauge is shown.
        assert ratios(await scrape(client)) == {}


async def test_services_read_a_chunk_at_a_time_give_the_same_gauges(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with app_client(seeded_port()) as client:
        whole = ratios(await scrape(client))
    monkeypatch.setattr(gauges, "CHUNK", 2)
    port = seeded_port()
    asked: list[tuple[str, ...]] = []
    rollups = port.rollups

    async def recording(names: Any, since: float, until: float, width: int = 3600) -> Any:
        asked.append(tuple(names))
        return await rollups(names, since, until, width)

    port.rollups = recording  # type: ignore[method-assign]
    async with app_client(port) as client:
        assert ratios(await scrape(client)) == whole
    assert set(asked) == {("web", "api"), ("db",)}


async def test_a_failing_read_keeps_the_last_gauges_and_the_scrape(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = seeded_port()
    async with app_client(port) as client:
        before = ratios(await scrape(client))

        async def broken(*_: Any, **__: Any) -> Any:
            raise StoreError("database is locked")

        port.rollups = broken  # type: ignore[method-assign]
        await port.clock.advance(60)
        families = await scrape(client)
    assert ratios(families) == before
    assert "pymon_service_status" in families
    assert "cannot read the uptime rollups: database is locked" in caplog.text


async def test_each_gauge_is_the_reports_uptime_of_its_window() -> None:
    # Hour and day buckets that disagree (each day: its hours say one thing, the day
    # bucket another), so any bucket read from the wrong width shows.
    port = fake_port(
        "services:\n"
        "  - {name: a, type: tcp, host: h, port: 1}\n"
        "  - {name: b, type: tcp, host: h, port: 1}\n"
    )
    now = port.now()
    midnight = now // DAY * DAY
    for k, service in enumerate(("a", "b")):
        start = midnight - 32 * DAY
        while start < now:
            down = float((start // HOUR + k) % 7 * 300)
            port.buckets.append(
                Bucket(service, start, HOUR, seconds={"ok": HOUR - down, "error": down})
            )
            start += HOUR
        for d in range(1, 33):
            down = float(d * 97 + k * 1000)
            start = midnight - d * DAY
            port.buckets.append(
                Bucket(service, start, DAY, seconds={"ok": DAY - down, "failed": down})
            )
    found = {(s.service, s.window): s.ratio for s in await UptimeGauges().samples(port)}
    targets = [Target("a"), Target("b")]
    for label, span in WINDOWS:
        report = await read_report(port, targets, now - span, now)
        for row in report.services:
            assert row.uptime.uptime_pct is not None
            assert found[(row.service, label)] == pytest.approx(
                row.uptime.uptime_pct / 100, rel=1e-12
            )
    assert len(found) == 6
