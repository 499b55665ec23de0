"""The Reports page, server-rendered on the fake port's seeded rollups: the table in
the order asked, targets met and missed marked, the date-range form and quick links,
and a CSV link that downloads the same window."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from pymon.web.pages import reports
from tests.web.helpers import app_client
from tests.web.reports_data import CONFIG, MIDNIGHT, seeded_port
from tests.web.test_pages import Dom, page

WINDOW = f"since={MIDNIGHT - 2 * 86400}&until=2026-05-27"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(seeded_port()) as c:
        yield c


def services(dom: Dom) -> list[str]:
    return [row.attrs["data-service"] for row in dom.all("tr", data_service=None)]


async def test_the_report_is_a_table_with_targets_marked(client: httpx.AsyncClient) -> None:
    dom = await page(client, f"/reports?{WINDOW}")
    assert services(dom) == ["api", "db", "web"]
    classes = {
        row.attrs["data-service"]: row.attrs["class"] for row in dom.all("tr", data_service=None)
    }
    assert classes == {"api": "sla-missed", "db": "sla-met", "web": "sla-no-target"}
    uptime = sorted(float(c.attrs["data-value"]) for c in dom.all("td", data_col="uptime_pct"))
    assert uptime == [pytest.approx(100 * 23 / 24), pytest.approx(100.0), pytest.approx(100.0)]
    window = dom.by_id("report-window").text
    assert "2026-05-26 00:00:00 UTC to 2026-05-28 00:00:00 UTC" in window
    assert "1 met" in window and "1 missed" in window
    # The form shows the window as dates; the last day shown is the window's last.
    assert dom.by_id("report-since").attrs["value"] == "2026-05-26"
    assert dom.by_id("report-until").attrs["value"] == "2026-05-27"


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        ("uptime_pct", ["api", "db", "web"]),
        ("-uptime_pct", ["db", "web", "api"]),
        ("-incidents", ["api", "db", "web"]),
        ("-service", ["web", "db", "api"]),
        # No target (web) comes last whichever way.
        ("sla", ["db", "api", "web"]),
        ("-sla", ["api", "db", "web"]),
    ],
)
async def test_the_table_sorts_by_any_column(
    client: httpx.AsyncClient, sort: str, order: list[str]
) -> None:
    dom = await page(client, f"/reports?{WINDOW}&sort={sort}")
    assert services(dom) == order
    header = dom.one("th", data_sort=sort.lstrip("-"))
    assert header.attrs["aria-sort"] == ("descending" if sort.startswith("-") else "ascending")


async def test_a_header_link_turns_the_order_around(client: httpx.AsyncClient) -> None:
    dom = await page(client, f"/reports?{WINDOW}&sort=uptime_pct")
    links = {th.attrs["data-sort"]: th for th in dom.all("th", data_sort=None)}
    assert links["uptime_pct"]
    anchors = [a.attrs["href"] for a in dom.all("a", href=None) if "sort=" in a.attrs["href"]]
    assert any("sort=-uptime_pct" in href for href in anchors)
    assert any("sort=incidents" in href for href in anchors)


async def test_the_csv_link_downloads_the_same_window(client: httpx.AsyncClient) -> None:
    dom = await page(client, f"/reports?{WINDOW}&tag=web&include_maintenance=1")
    assert services(dom) == ["api", "web"]
    href = dom.by_id("report-csv").attrs["href"]
    query = parse_qs(urlsplit(href).query)
    assert query["format"] == ["csv"] and query["tag"] == ["web"]
    assert float(query["since"][0]) == MIDNIGHT - 2 * 86400
    assert float(query["until"][0]) == MIDNIGHT
    answer = await client.get(href)
    assert answer.status_code == 200
    table = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["service"] for r in table] == ["web", "api"]


async def test_quick_links_ask_for_the_last_hours_to_a_year(client: httpx.AsyncClient) -> None:
    dom = await page(client, "/reports?tag=web")
    quick = {
        a.text.strip(): a.attrs["href"]
        for a in dom.all("a", href=None)
        if "since=" in a.attrs["href"] and "sort" not in a.attrs["href"]
    }
    assert quick["24h"] == "/reports?since=24h&tag=web"
    assert quick["1y"] == "/reports?since=365d&tag=web"
    assert {"7d", "30d", "90d"} <= quick.keys()
    year = await page(client, quick["1y"])
    assert services(year) == ["api", "web"]


async def test_a_bad_date_is_said_on_the_page(client: httpx.AsyncClient) -> None:
    dom = await page(client, "/reports?since=not-a-date", status=422)
    assert "since" in dom.by_id("report-error").text
    assert not dom.all("table", id="report")


async def test_a_long_report_is_paged_and_sorted_on_the_server(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reports, "ROWS_PER_PAGE", 2)
    first = await page(client, f"/reports?{WINDOW}&sort=-uptime_pct")
    assert services(first) == ["db", "web"]
    # Only the server sees every row: the table is not marked complete for sorting.js.
    assert "data-complete" not in first.by_id("report").attrs
    assert "page 1 of 2 (3 services)" in first.by_id("report-pager").text
    following = first.one("a", rel="next").attrs["href"]
    assert "page=2" in following and "sort=-uptime_pct" in following
    second = await page(client, following)
    assert services(second) == ["api"]
    # The form keeps the order; a new filter starts again on page 1.
    assert second.one("input", name="sort").attrs["value"] == "-uptime_pct"
    one_page = await page(client, f"/reports?{WINDOW}&tag=web")
    assert services(one_page) == ["api", "web"]
    assert "data-complete" in one_page.by_id("report").attrs


async def test_the_forms_any_tag_and_empty_dates_mean_no_filter(client: httpx.AsyncClient) -> None:
    dom = await page(client, "/reports?since=&until=&tag=&include_maintenance=1")
    assert services(dom) == ["api", "db", "web"]
    assert dom.by_id("report-csv").attrs["href"].count("tag=") == 0


async def test_links_stay_under_the_base_path() -> None:
    port = seeded_port("web: {base_path: /mon}\n" + CONFIG)
    async with app_client(port) as client:
        dom = await page(client, f"/mon/reports?{WINDOW}")
        csv_link = dom.by_id("report-csv").attrs["href"]
        assert csv_link.startswith("/mon/api/v1/reports/uptime?")
        assert (await client.get(csv_link)).headers["content-type"].startswith("text/csv")
    hrefs = [a.attrs["href"] for a in dom.all("a", href=None)]
    assert dom.one("form", id="report-filters").attrs["action"] == "/mon/reports"
    assert any(h.startswith("/mon/reports?since=7d") for h in hrefs)
    assert all(h.startswith("/mon/") for h in hrefs if "sort=" in h)
