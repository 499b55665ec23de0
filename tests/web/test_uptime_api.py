"""GET /api/v1/services/{name}/uptime on a fake engine port (seeded buckets) and
through a real daemon; the service page's uptime line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from pymon.model import Status
from pymon.uptime import DAY, HOUR, Bucket, bucket_start
from tests.support.port import SOME_TIME, FakePort, fake_port
from tests.support.servers import TcpListener
from tests.support.waiting import wait_for
from tests.web.helpers import app_client, client_for, running

CONFIG = """
services:
  - {name: web, type: tcp, host: 127.0.0.1, port: 9}
  - {name: quiet, type: tcp, host: 127.0.0.1, port: 9}
"""
# The hour that failed for half of it, two days before the fake port's now.
FAILED_HOUR = bucket_start(SOME_TIME, HOUR) - 48 * HOUR


def seed(port: FakePort) -> None:
    """Four days of buckets for ``web`` as the rollups keep them, up to now: every hour up, but
    half of one hour failed and a quarter of another in maintenance (failed); the
    day buckets hold the sums of their hours."""
    first = bucket_start(SOME_TIME, DAY) - 3 * DAY
    days: dict[float, Bucket] = {}
    start = first
    while start < SOME_TIME:
        if start == FAILED_HOUR:
            bucket = Bucket(
                "web",
                start,
                HOUR,
                checks=60,
                ok_checks=30,
                seconds={"ok": 1800.0, "failed": 1800.0},
                worst=Status.FAILED,
            )
        elif start == FAILED_HOUR + HOUR:
            bucket = Bucket(
                "web",
                start,
                HOUR,
                checks=60,
                ok_checks=45,
                seconds={"ok": 2700.0},
                maintenance={"failed": 900.0},
            )
        else:
            # The current hour holds only the time up to now.
            up = min(HOUR, SOME_TIME - start)
            bucket = Bucket("web", start, HOUR, checks=60, ok_checks=60, seconds={"ok": up})
        port.buckets.append(bucket)
        day = bucket_start(start, DAY)
        held = days.get(day, Bucket("web", day, DAY))
        days[day] = Bucket(
            "web",
            day,
            DAY,
            checks=held.checks + bucket.checks,
            ok_checks=held.ok_checks + bucket.ok_checks,
            seconds={
                k: held.seconds.get(k, 0.0) + bucket.seconds.get(k, 0.0)
                for k in {*held.seconds, *bucket.seconds}
            },
            maintenance={
                k: held.maintenance.get(k, 0.0) + bucket.maintenance.get(k, 0.0)
                for k in {*held.maintenance, *bucket.maintenance}
            },
            worst=bucket.worst or held.worst,
        )
        start += HOUR
    port.buckets.extend(days.values())


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app on a fake port with ``web``'s four days of buckets."""
    port = fake_port(CONFIG)
    seed(port)
    async with app_client(port) as c:
        yield c


async def test_uptime_over_a_window_is_by_time_from_days_and_edge_hours(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/api/v1/services/web/uptime", params={"window": "72h"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["until"] == SOME_TIME and body["since"] == SOME_TIME - 72 * HOUR
    # Every second of the window once: read from day buckets in the middle and hour
    # buckets at the edges, never both.
    assert body["up"] + body["down"] + body["maintenance"] + body["no_data"] == pytest.approx(
        72 * HOUR
    )
    assert body["down"] == pytest.approx(1800.0)
    assert body["downtime_minutes"] == pytest.approx(30.0)
    assert body["maintenance"] == pytest.approx(900.0)
    assert body["no_data"] == pytest.approx(0.0, abs=1e-6)
    assert body["uptime_pct"] == pytest.approx(100 * body["up"] / (body["up"] + 1800.0))
    assert body["worst"] == "failed"
    assert set(body) >= {"checks", "ok_checks", "unknown", "response_p95", "response_avg"}


async def test_maintenance_counts_only_when_asked(client: httpx.AsyncClient) -> None:
    params = {"since": str(FAILED_HOUR + HOUR), "until": str(FAILED_HOUR + 2 * HOUR)}
    plain = (await client.get("/api/v1/services/web/uptime", params=params)).json()
    assert plain["uptime_pct"] == 100.0 and plain["down"] == 0.0
    counted = (
        await client.get(
            "/api/v1/services/web/uptime", params={**params, "include_maintenance": "true"}
        )
    ).json()
    assert counted["uptime_pct"] == pytest.approx(75.0)


async def test_since_and_until_in_iso_8601(client: httpx.AsyncClient) -> None:
    since = datetime.fromtimestamp(FAILED_HOUR, UTC).isoformat()
    until = datetime.fromtimestamp(FAILED_HOUR + HOUR, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    body = (
        await client.get("/api/v1/services/web/uptime", params={"since": since, "until": until})
    ).json()
    assert (body["since"], body["until"]) == (FAILED_HOUR, FAILED_HOUR + HOUR)
    assert body["uptime_pct"] == 50.0 and body["checks"] == 60


async def test_a_service_without_buckets_is_no_data_not_up(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/services/quiet/uptime", params={"window": "1y"})).json()
    assert body["uptime_pct"] is None and body["no_data"] == 365 * DAY
    assert (await client.get("/api/v1/services/nope/uptime")).status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"window": "401d"}, "window"),
        ({"window": "often"}, "window"),
        ({"window": "0s"}, "window"),
        ({"window": "7d", "since": "1h"}, "window"),
        ({"since": "1h", "until": "2h"}, "until"),
        ({"since": "500d"}, "since"),
        ({"until": "1e300"}, "until"),
        ({"since": "soon"}, "since"),
        ({"include_maintenance": "perhaps"}, "include_maintenance"),
    ],
)
async def test_a_bad_window_is_a_422_naming_the_field(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    answer = await client.get("/api/v1/services/web/uptime", params=params)
    assert answer.status_code == 422
    assert [f["field"] for f in answer.json()["fields"]] == [field]


async def test_the_service_page_shows_uptime_under_the_status(client: httpx.AsyncClient) -> None:
    page = (await client.get("/services/web")).text
    line = page[page.index('id="uptime"') : page.index("</p>", page.index('id="uptime"'))]
    assert "24h 100.00 %" in line
    up = SOME_TIME - (bucket_start(SOME_TIME, DAY) - 3 * DAY) - 1800.0 - 900.0
    shown = f"{100 * up / (up + 1800.0):.2f} %"
    assert f"7d {shown}" in line and f"30d {shown}" in line
    quiet = (await client.get("/services/quiet")).text
    assert "24h no data" in quiet


async def test_uptime_through_a_running_daemon(tmp_path: object, listener: TcpListener) -> None:
    text = f"""
storage: {{url: "sqlite:///{tmp_path}/p.db", flush_interval: 50ms}}
web: {{listen: "127.0.0.1:0"}}
defaults: {{interval: 100ms, timeout: 1s}}
services:
  - {{name: up, type: tcp, host: 127.0.0.1, port: {listener.port}}}
"""
    async with running(text) as daemon, client_for(daemon) as client:
        await wait_for(lambda: daemon.runtime.states["up"].seq >= 4)
        body = (await client.get("/api/v1/services/up/uptime", params={"window": "24h"})).json()
        assert body["checks"] >= 4 and body["ok_checks"] == body["checks"]
        assert body["uptime_pct"] == 100.0 and body["up"] > 0
        assert body["down"] == 0.0 and body["no_data"] < 24 * HOUR
