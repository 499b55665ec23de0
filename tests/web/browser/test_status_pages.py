"""A public status page in a real browser, against a real ``pymon run``, with JavaScript
off: the 90 bars and the states are all in the HTML; and the same under ``base_path``.

Only today has data here (the daemon's own rollups, from its first minute): the days
before are "no data"; colours of seeded days are tested on the fake port
(tests/web/test_status_pages.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from playwright.async_api import Browser, Page, expect

from tests.web.browser.conftest import ARTIFACTS, IMG_NAME, SCRIPT_NAME, StartPymon

PAGES: list[dict[str, Any]] = [
    {
        "slug": "public",
        "title": "Example status",
        "groups": [
            {
                "name": "Data",
                "components": [
                    {"name": "Primary database", "service": "alpha"},
                    {"name": "Web tier", "tags": ["web"]},
                ],
            },
            {"name": "Mail", "components": [{"name": "Outgoing mail", "service": "echo"}]},
        ],
    }
]


async def today_has_data(url: str) -> None:
    """Wait until the page's JSON (cached for 10 s) shows today's bar of its last
    component with data: the rollups have credited that service some time."""
    async with httpx.AsyncClient(timeout=5) as client:
        for _ in range(300):
            page = (await client.get(url)).json()
            if page["groups"][-1]["components"][-1]["days"][-1]["state"] != "no_data":
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"today's bar never had data: {page['groups'][-1]}")


@asynccontextmanager
async def without_javascript(browser: Browser, url: str) -> AsyncIterator[Page]:
    """A page at ``url`` in a fresh context with JavaScript turned off."""
    context = await browser.new_context(java_script_enabled=False)
    try:
        page = await context.new_page()
        page.set_default_timeout(10_000)
        answer = await page.goto(url)
        assert answer is not None and answer.status == 200
        yield page
    finally:
        await context.close()


async def test_the_page_shows_bars_and_states_without_javascript(
    start_pymon: StartPymon, browser: Browser
) -> None:
    running = await start_pymon(status_pages=PAGES)
    await today_has_data(f"{running.url}/status/public.json")
    async with without_javascript(browser, f"{running.url}/status/public") as page:
        await expect(page.locator("h1")).to_have_text("Example status")
        # alpha is up; bravo up and charlie down under "web"; echo down.
        articles = page.locator("article.sp-component")
        await expect(articles).to_have_count(3)
        states = [await a.get_attribute("data-state") for a in await articles.all()]
        assert states == ["operational", "partial_outage", "major_outage"]
        await expect(articles.nth(2).locator(".sp-state")).to_have_text("Major outage")
        await expect(page.locator("#summary")).to_have_text("Major system outage")
        updates = page.locator("li.sp-incident")
        await expect(updates).to_have_count(2)
        await expect(updates.filter(has_text="Web tier")).to_contain_text("Partial outage")
        bars = page.locator("ol.sp-bars > li")
        await expect(bars).to_have_count(270)
        # Each bar is drawn (a box with width and height) and says its day on hover.
        box = await bars.first.bounding_box()
        assert box is not None and box["width"] >= 2 and box["height"] >= 20
        assert (await bars.first.get_attribute("title") or "").endswith(": no data")
        # Today's bar of "Outgoing mail" (echo, down) from the daemon's own rollups.
        assert (await bars.last.get_attribute("title") or "").endswith("% up, major outage")
        body = await page.content()
        for internal in ("alpha", "bravo", "charlie", "echo", "127.0.0.1", SCRIPT_NAME, IMG_NAME):
            assert internal not in body, internal
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "status-page-no-js.png"), full_page=True)


async def test_a_page_under_base_path(start_pymon: StartPymon, browser: Browser) -> None:
    running = await start_pymon(base_path="/monitoring", status_pages=PAGES)
    async with without_javascript(browser, f"{running.url}/status/public") as page:
        context = page.context
        await expect(page.locator("ol.sp-bars").first.locator("li")).to_have_count(90)
        # The stylesheet came from under the prefix: the bars are laid out in a row.
        first, last = (
            page.locator("ol.sp-bars").first.locator("li").nth(0),
            page.locator("ol.sp-bars").first.locator("li").nth(89),
        )
        one, other = await first.bounding_box(), await last.bounding_box()
        assert one is not None and other is not None
        assert abs(one["y"] - other["y"]) < 1 and other["x"] > one["x"]
        badge = await context.request.get(f"{running.url}/badge/alpha/status.svg")
        assert badge.status == 200 and badge.headers["content-type"] == "image/svg+xml"
        assert "Primary database" in await badge.text()
        json_form = await context.request.get(f"{running.url}/status/public.json")
        assert (await json_form.json())["groups"][1]["state"] == "major_outage"
