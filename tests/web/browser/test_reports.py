"""The Reports page in Chromium, served by a real web server over the fake port's
seeded rollups: sorting in place with JavaScript, by links without it, the quick
links and the date form, the missed target marked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from tests.web.browser.conftest import Dialogs, Shots
from tests.web.reports_data import MIDNIGHT, seeded_port, serving

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

WINDOW = f"since={MIDNIGHT - 2 * 86400}&until=2026-05-27"


@pytest.fixture
async def site() -> AsyncIterator[str]:
    async with serving(seeded_port()) as address:
        yield address


async def order(page: Page) -> list[str]:
    rows = page.locator("#report tbody tr")
    return [
        await rows.nth(i).get_attribute("data-service") or "" for i in range(await rows.count())
    ]


async def test_the_table_sorts_in_place(site: str, page: tuple[Page, Shots, Dialogs]) -> None:
    tab, shots, dialogs = page
    await tab.goto(f"{site}/reports?{WINDOW}")
    assert await order(tab) == ["api", "db", "web"]
    await shots("loaded")
    loads: list[str] = []
    tab.on("load", lambda _page: loads.append("load"))
    header = tab.locator('th[data-sort="uptime_pct"] a')
    await header.click()
    assert await order(tab) == ["api", "db", "web"]
    assert await tab.get_attribute('th[data-sort="uptime_pct"]', "aria-sort") == "ascending"
    await header.click()
    assert await order(tab) == ["db", "web", "api"]
    assert await tab.get_attribute('th[data-sort="uptime_pct"]', "aria-sort") == "descending"
    assert "sort=-uptime_pct" in tab.url
    await tab.locator('th[data-sort="sla"] a').click()
    # No target sorts last either way.
    assert await order(tab) == ["db", "api", "web"]
    assert loads == []  # sorted in place: no page was loaded
    await shots("sorted")
    # The missed target stands out: its row is not the table's plain background.
    missed = await tab.locator('tr[data-service="api"] td').first.evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    plain = await tab.locator('tr[data-service="web"] td').first.evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    assert missed != plain
    assert dialogs.seen == []


async def test_without_javascript_links_and_the_form_do_it(site: str, browser: Browser) -> None:
    context = await browser.new_context(java_script_enabled=False)
    try:
        tab = await context.new_page()
        tab.set_default_timeout(10_000)
        await tab.goto(f"{site}/reports?{WINDOW}")
        await tab.locator('th[data-sort="incidents"] a').click()
        await tab.wait_for_url("**sort=incidents**")
        await tab.locator('th[data-sort="incidents"] a').click()
        await tab.wait_for_url("**sort=-incidents**")
        assert await order(tab) == ["api", "db", "web"]
        await tab.locator("#report-quick a", has_text="7d").click()
        await tab.wait_for_url("**since=7d**")
        assert await tab.locator("#report tbody tr").count() == 3
        await tab.fill("#report-since", "2026-05-20")
        await tab.fill("#report-until", "2026-05-21")
        await tab.select_option("#report-tag", "web")
        await tab.locator("#report-filters button[type=submit]").click()
        await tab.wait_for_url("**until=2026-05-21**")
        assert await order(tab) == ["api", "web"]
        text = await tab.locator("#report-window").inner_text()
        assert "2026-05-20 00:00:00 UTC to 2026-05-22 00:00:00 UTC" in text
        await tab.select_option("#report-tag", "")
        await tab.locator("#report-filters button[type=submit]").click()
        await tab.wait_for_url("**tag=&**")
        assert await order(tab) == ["api", "db", "web"]
    finally:
        await context.close()
