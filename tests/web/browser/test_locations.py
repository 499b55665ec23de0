"""The service page of a service with locations in a real browser: the location table
and the partial flag as served and as the live stream changes them, and the chart's
one line per location drawn from each location check's history.

The app runs on the fake port (which combines locations as the engine does), served
by pymon's own web server on 127.0.0.1; the browser is Debian's Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page, expect

from pymon.model import Status
from pymon.web.app import create_app
from pymon.web.server import WebServer
from tests.support.port import FakePort, fake_port
from tests.web.browser.conftest import Dialogs, Shots

CONFIG = """
defaults: {flap_guard: {failed: 1, error: 1, ok: 1}}
services:
  - {name: web, type: tcp, host: 127.0.0.1, port: 9, interval: 60s,
     locations: [eu-west, us-east, ap-south]}
"""


@pytest.fixture
async def served(browser_ready: None) -> AsyncIterator[tuple[FakePort, str]]:
    port = fake_port(CONFIG)
    for minute in range(5):
        for n, where in enumerate(("eu-west", "us-east", "ap-south")):
            port.check(f"web@{where}", Status.OK, "connected", {"connect_ms": 10.0 * (n + 1)})
        if minute < 4:
            await port.clock.advance(10)
    port.check("web@us-east", Status.FAILED, "connection refused", {})
    server = WebServer(create_app(port), "127.0.0.1", 0)
    bound = await server.start()
    try:
        yield port, f"http://127.0.0.1:{bound}"
    finally:
        await server.stop()


async def test_the_location_table_partial_flag_and_split_chart(
    served: tuple[FakePort, str], page: tuple[Page, Shots, Dialogs]
) -> None:
    port, url = served
    browser, shots, dialogs = page
    await browser.goto(f"{url}/services/web")
    await expect(browser.locator("#live")).to_have_attribute("data-state", "live")
    rows = browser.locator("#locations tbody tr")
    await expect(rows).to_have_count(3)
    await expect(
        browser.locator('#locations tr[data-location="us-east"] [data-col="status"]')
    ).to_have_text("failed")
    flag = browser.locator('#flags [data-flag="partial"]')
    await expect(flag).to_have_text("partial: us-east")
    # One line per location, from web@eu-west's, web@us-east's and web@ap-south's history.
    await expect(browser.locator("#chart-legend span")).to_have_count(3)
    lines = browser.locator("#chart path.line[data-location]")
    await expect(lines).not_to_have_count(0)
    drawn = await lines.evaluate_all("(ps) => [...new Set(ps.map((p) => p.dataset.location))]")
    assert sorted(drawn) == ["ap-south", "eu-west", "us-east"]
    await shots("partial")

    # A second location fails: the quorum (2 of 3) agrees, the flag goes, the table follows.
    port.check("web@ap-south", Status.FAILED, "connection refused", {})
    await expect(browser.locator("#status")).to_have_text("failed")
    await expect(flag).to_have_count(0)
    await expect(
        browser.locator('#locations tr[data-location="ap-south"] [data-col="status"]')
    ).to_have_text("failed")
    await shots("down")

    # Unticked: the service's own line again (it has no metrics of its own: no data).
    await browser.locator("#split-locations").uncheck()
    await expect(browser.locator("#chart-legend span")).to_have_count(0)
    await expect(browser.locator("#chart path.line[data-location]")).to_have_count(0)
    assert dialogs.seen == []
