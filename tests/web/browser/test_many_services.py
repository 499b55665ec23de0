"""The services table with more services than one page holds, in a real browser: every
service loaded (the page fetches only the keys it shows), one page of rows at a time,
and sorting that orders all of them, not only the rows on the page.

Correctness only, on a few hundred services: how fast it is at 10,000 is
``benchmarks/web_compare.py``'s to say, never a test's.
"""

from __future__ import annotations

from typing import Any

import httpx
from playwright.async_api import Page, expect

from pymon.web.pages import PAGE_SIZE
from tests.web.browser.conftest import SERVICES, Dialogs, Shots, StartPymon, Targets
from tests.web.browser.test_dashboard import rows

BULK = 2 * PAGE_SIZE + 37
SEVERITY = {"disabled": 0, "ok": 1, "unknown": 2, "warn": 3, "error": 4, "failed": 5}


def bulk(targets: Targets) -> list[dict[str, Any]]:
    """``BULK`` services, every third one at a target that refuses (failed), the others
    at one that answers (ok); names out of order, so config order is not name order."""
    return [
        {
            "name": f"bulk-{(i * 7919) % BULK:04d}",
            "type": "tcp",
            "host": "127.0.0.1",
            "port": targets["charlie" if i % 3 == 0 else "alpha"].port,
            "interval": "2s",
            "tags": ["bulk"],
        }
        for i in range(BULK)
    ]


async def page_names(page: Page) -> list[str]:
    return [name for name, _ in await rows(page)]


async def test_many_services_load_page_by_page_and_sort_as_a_whole(
    start_pymon: StartPymon, targets: Targets, page: tuple[Page, Shots, Dialogs]
) -> None:
    tab, shots, dialogs = page
    pymon = await start_pymon(extra=bulk(targets))
    async with httpx.AsyncClient() as client:
        listed = (await client.get(f"{pymon.url}/api/v1/services")).json()["services"]
    total = len(SERVICES) + BULK
    assert len(listed) == total
    by_status = sorted(listed, key=lambda s: (SEVERITY[s["status"]], s["name"].lower()))
    expected = [s["name"] for s in by_status]

    await tab.goto(f"{pymon.url}/services")
    await expect(tab.locator("#services[data-ready]")).to_have_count(1)
    await expect(tab.locator("#shown")).to_have_text(f"{total} of {total} services")
    await expect(tab.locator("#services tbody tr[data-service]")).to_have_count(PAGE_SIZE)
    await expect(tab.locator("#pager .where")).to_have_text("page 1 of 3")
    await shots("loaded")

    # Status, then name: the first page holds the first rows of the whole order.
    await tab.locator('th[data-sort="status"]').click()
    await tab.locator('th[data-sort="name"]').click(modifiers=["Shift"])
    await expect(tab.locator('th[data-sort="name"]')).to_have_attribute("data-sort-position", "2")
    assert await page_names(tab) == expected[:PAGE_SIZE]
    await tab.locator('#pager [rel="last"]').click()
    await expect(tab.locator("#pager .where")).to_have_text("page 3 of 3")
    assert await page_names(tab) == expected[2 * PAGE_SIZE :]
    await shots("sorted-last-page")

    # Name, descending: a second click on the first key turns it around, back on page 1.
    await tab.locator('th[data-sort="name"]').click()
    await tab.locator('th[data-sort="name"]').click()
    await expect(tab.locator('th[data-sort="name"]')).to_have_attribute("aria-sort", "descending")
    await expect(tab.locator("#pager .where")).to_have_text("page 1 of 3")
    descending = sorted((s["name"] for s in listed), key=str.lower, reverse=True)
    assert await page_names(tab) == descending[:PAGE_SIZE]

    # A filter counts and pages what matches.
    await tab.locator("#filter-status").select_option("failed")
    failed = sum(s["status"] == "failed" for s in listed)
    await expect(tab.locator("#shown")).to_have_text(f"{failed} of {total} services")
    await shots("filtered")
    assert dialogs.seen == []
