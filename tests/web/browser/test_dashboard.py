"""The dashboard in a real browser against a real ``pymon run``: what an operator does.

Headless Debian Chromium through Playwright. The services point at TCP listeners
this test owns, so stopping one makes its service fail for real. Every wait is a
poll with a deadline (Playwright's ``expect`` or :func:`eventually`), never a sleep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import httpx
from argon2 import PasswordHasher
from playwright.async_api import Page, expect

from tests.support.proxy import PrefixProxy
from tests.web.browser.conftest import (
    IMG_NAME,
    SCRIPT_NAME,
    SERVICES,
    Dialogs,
    Shots,
    StartPymon,
    Targets,
)

LIVE = 5_000  # ms a live change may take to show (the contract says within a second)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    """Poll ``check`` until it holds."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def initially(up: bool) -> list[str]:
    return sorted(name for name, is_up, _ in SERVICES if is_up is up)


async def rows(page: Page, *, visible_only: bool = False) -> list[tuple[str, str]]:
    """(name, status) of the services table's rows, in their order on the page."""
    found: list[tuple[str, str]] = await page.eval_on_selector_all(
        "#services tbody tr[data-service]",
        """(rows, visibleOnly) => rows
            .filter(r => !visibleOnly || r.offsetParent !== null)
            .map(r => [r.dataset.service,
                       r.querySelector('td[data-col="status"]').textContent.trim()])""",
        visible_only,
    )
    return [(name, status) for name, status in found]


def sorted_by_status_then_name(found: list[tuple[str, str]]) -> bool:
    """Each status forms one block, and names ascend inside each block.

    Which status comes first (by name or by severity) is the page's choice.
    """
    blocks: list[str] = []
    for _, status in found:
        if not blocks or blocks[-1] != status:
            blocks.append(status)
    if len(blocks) != len(set(blocks)):
        return False
    return all(
        [n for n, s in found if s == status] == sorted(n for n, s in found if s == status)
        for status in blocks
    )


async def acknowledge(
    page: Page, shots: Shots, base: str, name: str, comment: str
) -> dict[str, Any]:
    """Acknowledge from the open service page; once the flag shows, the API's ``ack``."""
    await page.locator("#ack-form [name=comment]").fill(comment)
    await page.locator("#ack").click()
    await expect(page.locator('[data-flag="acknowledged"]')).to_have_count(1, timeout=LIVE)
    await shots("acknowledged")
    async with httpx.AsyncClient() as client:
        detail = (await client.get(f"{base}/api/v1/services/{quote(name, safe='')}")).json()
    ack: dict[str, Any] = detail["incident"]["ack"]
    return ack


async def operator_flow(page: Page, shots: Shots, base: str, targets: Targets) -> None:
    """Overview, sort, filter, a live failure, an acknowledgement: under ``base``."""
    # The overview counts what the targets say.
    await page.goto(f"{base}/")
    await expect(page.locator('[data-count="ok"]')).to_have_text(str(len(initially(True))))
    await expect(page.locator('[data-count="failed"]')).to_have_text(str(len(initially(False))))
    await expect(page.locator('#problems li[data-service="charlie"]')).to_have_count(1)
    await shots("overview")

    # The table sorted by status, then by name (shift+click adds a second key).
    await page.goto(f"{base}/services")
    await expect(page.locator("#services tbody tr[data-service]")).to_have_count(len(SERVICES))
    await page.locator('th[data-sort="status"]').click()
    await page.locator('th[data-sort="name"]').click(modifiers=["Shift"])
    await expect(page.locator('th[data-sort="status"]')).to_have_attribute("aria-sort", "ascending")
    await expect(page.locator('th[data-sort="name"]')).to_have_attribute("aria-sort", "ascending")
    await eventually(lambda: _holds(sorted_by_status_then_name, page))
    await shots("sorted-status-name")

    # Filtering by text, then by status.
    await page.locator("#filter-text").fill("alp")
    await eventually(lambda: _visible_names_are(page, ["alpha"]))
    await shots("filter-text")
    await page.locator("#filter-text").fill("")
    await page.locator("#filter-status").select_option("failed")
    await eventually(lambda: _visible_names_are(page, initially(False)))
    await shots("filter-status")
    await page.locator("#filter-status").select_option(index=0)
    await eventually(lambda: _visible_count_is(page, len(SERVICES)))

    # A target stops: its row turns failed with no reload (the marker survives).
    await expect(page.locator("#live")).to_have_text("live", timeout=LIVE)
    await page.evaluate("window.__notReloaded = true")
    await targets["delta"].stop()
    row = page.locator('#services tr[data-service="delta"]')
    await expect(row.locator('td[data-col="status"]')).to_have_text("failed", timeout=LIVE)
    await expect(row).to_have_class("status-failed", timeout=LIVE)
    assert await page.evaluate("window.__notReloaded === true"), "the page was reloaded"
    await shots("live-failed")

    # Acknowledging from the service page: the flag shows without a reload.
    await page.goto(f"{base}/services/charlie")
    await expect(page.locator("#status")).to_have_text("failed")
    ack = await acknowledge(page, shots, base, "charlie", "on it <b>now</b>")
    assert ack["comment"] == "on it <b>now</b>"


def ann(password: str) -> dict[str, Any]:
    """``web.auth`` with one user, ann, whose argon2id hash is made here."""
    return {"users": [{"name": "ann", "password_hash": PasswordHasher().hash(password)}]}


async def log_in(page: Page, shots: Shots, base: str, user: str, password: str) -> None:
    """Through ``/login``: a wrong password is refused with a message, the right one passes."""
    await page.goto(f"{base}/login")
    await page.locator("#login [name=username]").fill(user)
    await page.locator("#login [name=password]").fill("wrong")
    await page.locator("#login [type=submit]").click()
    await expect(page.locator("#login-error")).to_be_visible()
    await shots("login-refused")
    await page.locator("#login [name=username]").fill(user)
    await page.locator("#login [name=password]").fill(password)
    await page.locator("#login [type=submit]").click()
    await expect(page).not_to_have_url(f"{base}/login")
    await shots("logged-in")


async def _holds(check: Callable[[list[tuple[str, str]]], bool], page: Page) -> bool:
    return check(await rows(page))


async def _visible_names_are(page: Page, names: list[str]) -> bool:
    return sorted(n for n, _ in await rows(page, visible_only=True)) == sorted(names)


async def _visible_count_is(page: Page, count: int) -> bool:
    return len(await rows(page, visible_only=True)) == count


async def test_operator_flow(
    start_pymon: StartPymon, targets: Targets, page: tuple[Page, Shots, Dialogs]
) -> None:
    tab, shots, dialogs = page
    pymon = await start_pymon()
    await operator_flow(tab, shots, pymon.url, targets)
    assert dialogs.seen == []


async def test_operator_flow_under_base_path_behind_a_prefix_proxy(
    start_pymon: StartPymon,
    targets: Targets,
    prefix_proxy: Callable[[str, str], Awaitable[PrefixProxy]],
    page: tuple[Page, Shots, Dialogs],
) -> None:
    tab, shots, dialogs = page
    # Behind a proxy the loopback rule no longer applies: acknowledging needs a login.
    password = "prefix proxy password"
    pymon = await start_pymon(base_path="/pymon", auth=ann(password), proxied=True)
    proxy = await prefix_proxy(f"http://127.0.0.1:{pymon.port}", "/outer")
    public = f"{proxy.url}/pymon"
    await log_in(tab, shots, public, "ann", password)
    await tab.goto(f"{public}/services")
    await expect(tab.locator('meta[name="pymon-prefix"]')).to_have_attribute(
        "content", "/outer/pymon"
    )
    links: list[str] = await tab.eval_on_selector_all(
        "a[href^='/'], form[action^='/'], link[href^='/'], script[src^='/']",
        "els => els.map(e => e.getAttribute('href') || e.getAttribute('action')"
        " || e.getAttribute('src'))",
    )
    assert links, "no site-relative links found"
    outside = [link for link in links if not link.startswith("/outer/pymon")]
    assert outside == [], f"links that miss the prefix: {outside}"
    await operator_flow(tab, shots, public, targets)
    assert dialogs.seen == []


async def test_hostile_service_names_render_as_text(
    start_pymon: StartPymon, targets: Targets, page: tuple[Page, Shots, Dialogs]
) -> None:
    tab, shots, dialogs = page
    pymon = await start_pymon()
    await tab.goto(f"{pymon.url}/")
    await expect(tab.locator(f'#problems li[data-service="{_attr(SCRIPT_NAME)}"]')).to_have_count(1)
    await shots("overview")

    await tab.goto(f"{pymon.url}/services")
    for name in (SCRIPT_NAME, IMG_NAME):
        cell = tab.locator(f'tr[data-service="{_attr(name)}"] td[data-col="name"]')
        await expect(cell).to_have_text(name)
    # A live update re-renders a hostile row from JSON: it must stay text there too.
    await expect(tab.locator("#live")).to_have_text("live", timeout=LIVE)
    await targets[IMG_NAME].stop()
    row = tab.locator(f'tr[data-service="{_attr(IMG_NAME)}"]')
    await expect(row.locator('td[data-col="status"]')).to_have_text("failed", timeout=LIVE)
    await expect(row.locator('td[data-col="name"]')).to_have_text(IMG_NAME)
    await shots("services")

    for name in (SCRIPT_NAME, IMG_NAME):
        await tab.goto(f"{pymon.url}/services/{quote(name, safe='')}")
        await expect(tab.get_by_text(name, exact=True).first).to_be_visible()
        await shots("service")
    await tab.goto(f"{pymon.url}/events")
    await shots("events")

    assert await tab.locator("img[src='x']").count() == 0
    assert dialogs.seen == []


def _attr(value: str) -> str:
    """``value`` inside a double-quoted CSS attribute selector."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


async def test_login_then_acknowledge_when_users_are_configured(
    start_pymon: StartPymon, page: tuple[Page, Shots, Dialogs]
) -> None:
    tab, shots, dialogs = page
    password = "correct horse battery"
    pymon = await start_pymon(auth=ann(password))
    async with httpx.AsyncClient() as client:
        refused = await client.post(f"{pymon.url}/api/v1/services/charlie/ack")
    assert refused.status_code == 401  # users exist: loopback no longer writes freely

    await log_in(tab, shots, pymon.url, "ann", password)

    await tab.goto(f"{pymon.url}/services/charlie")
    ack = await acknowledge(tab, shots, pymon.url, "charlie", "mine")
    assert ack["author"] == "ann"
    assert dialogs.seen == []
