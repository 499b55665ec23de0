"""The service page's chart in a real browser: the axis ``static/axis.js`` draws is the
one ``pages/axis.py`` renders (one table for both), and a hole in the history breaks
the line and the status bar, on the page as served and as the browser redraws it."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from playwright.async_api import Browser, Page, expect

from pymon.model import ServiceState, Status
from pymon.store.base import ResultRecord
from pymon.store.sql import SqlStore
from tests.web.axis_cases import TICKS, TITLES
from tests.web.browser.conftest import Dialogs, Shots, StartPymon

GAPPY = "gappy"
INTERVAL = 60.0
HOLE = 50 * 60  # pymon stopped for 50 minutes
T0 = 1_780_000_000.0  # a fixed instant: what the chart shows reads no clock
# A service never checked while the test runs (disabled): its history is what the
# test wrote, 20 results a minute apart, 50 minutes of nothing, 20 more.
GAPPY_SERVICE = {
    "name": GAPPY,
    "type": "tcp",
    "host": "127.0.0.1",
    "port": 9,
    "interval": "60s",
    "enabled": False,
}


def results() -> list[ResultRecord]:
    times = [T0 + i * INTERVAL for i in range(20)]
    times += [times[-1] + HOLE + i * INTERVAL for i in range(20)]
    return [
        ResultRecord(
            GAPPY, seq, Status.OK, "connected", {"connect_ms": 20.0 + seq % 9}, at, 0.02, 0
        )
        for seq, at in enumerate(times, 1)
    ]


async def seed_hole(url: str) -> None:
    """Write ``gappy``'s history with a hole into the store before pymon starts."""
    store = SqlStore(url)
    await store.open()
    try:
        last = results()[-1]
        state = ServiceState(name=GAPPY, status=Status.OK, seq=last.seq, last_check=last.started_at)
        await store.write([state], results(), [])
    finally:
        await store.close()


CHART_JS = """async () => {
    const figure = document.getElementById("chart");
    return {
        title: [...figure.querySelectorAll("text.axis-title")].map((t) => t.textContent),
        ticks: [...figure.querySelectorAll("text.tick")].map((t) => t.textContent),
        lines: [...figure.querySelectorAll("path.line")].map((p) => p.getAttribute("d")),
        runs: [...document.querySelectorAll("#timeline rect")].map((r) => [
            r.getAttribute("class"),
            Number(r.getAttribute("x")),
            Number(r.getAttribute("width")),
        ]),
    };
}"""


def numbers(d: str) -> list[float]:
    """A path's coordinates (the server writes ``48.0`` where the browser writes ``48``)."""
    return [float(n) for n in re.findall(r"-?[0-9.]+", d)]


async def drawn(tab: Page) -> dict[str, Any]:
    found: dict[str, Any] = await tab.evaluate(CHART_JS)
    return found


async def test_axis_js_follows_the_same_table_as_python(
    start_pymon: StartPymon, page: tuple[Page, Shots, Dialogs]
) -> None:
    tab, _, dialogs = page
    pymon = await start_pymon()
    await tab.goto(f"{pymon.url}/")
    got = await tab.evaluate(
        """async ([url, titles, ticks]) => {
            const axis = await import(url);
            return {
                titles: titles.map(([name]) => axis.axisTitle(name)),
                ticks: ticks.map(([low, high]) => axis.ticks(low, high).labels),
            };
        }""",
        [f"{pymon.url}/static/axis.js", TITLES, TICKS],
    )
    assert got["titles"] == [title for _, title in TITLES]
    assert got["ticks"] == [labels for _, _, labels in TICKS]
    assert dialogs.seen == []


async def test_a_hole_in_the_history_breaks_the_chart(
    start_pymon: StartPymon, browser: Browser, page: tuple[Page, Shots, Dialogs]
) -> None:
    tab, shots, dialogs = page
    pymon = await start_pymon(extra=[GAPPY_SERVICE], seed=seed_hole)
    url = f"{pymon.url}/services/{quote(GAPPY, safe='')}"

    # As served (no script runs): the server's geometry.
    static = await browser.new_context(java_script_enabled=False)
    try:
        served_tab = await static.new_page()
        await served_tab.goto(url)
        served = await drawn(served_tab)
    finally:
        await static.close()

    # As the browser redraws it from /history?points=200.
    await tab.goto(url)
    await expect(tab.locator("#chart[data-draws]")).to_have_count(1)
    await shots("redrawn")
    redrawn = await drawn(tab)

    for chart in (served, redrawn):
        assert chart["title"] == ["connect (ms)"]
        assert chart["ticks"] == ["0", "10", "20", "30"]  # 21 to 28 ms
        # Two stretches of 20 results each: two lines, none across the hole.
        assert [d.count("M") for d in chart["lines"]] == [1, 1]
        assert [d.count("L") for d in chart["lines"]] == [19, 19]
        # Two green runs with empty space between them where pymon was not running.
        (first, second) = chart["runs"]
        assert first[0] == second[0] == "status-ok"
        assert second[1] - (first[1] + first[2]) > 100
    assert [r[1:] for r in redrawn["runs"]] == [r[1:] for r in served["runs"]]
    assert [numbers(d) for d in redrawn["lines"]] == [numbers(d) for d in served["lines"]]
    assert dialogs.seen == []
