"""The dashboard's pages, rendered on a fake engine port and read in process (no browser)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from pymon.model import Status
from pymon.web.auth import hash_secret
from pymon.web.pages import FLAGS
from tests.support.port import FakePort, fake_port
from tests.web.helpers import app_client

NASTY = "<script>alert(1)</script>"
SLASHED = "db/primary replica"
SMTP_PASSWORD = "sm7p-pa55word-never-shown"
PAGES = ["/", "/services", "/maintenance", "/events", "/reports", "/health", "/login"]


class Element:
    """One start tag: its name, attributes and the text directly up to its end tag."""

    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag = tag
        self.attrs = attrs
        self.text = ""


class Dom(HTMLParser):
    """Just enough of a DOM for assertions: every element, with text, in document order."""

    _VOID = frozenset({"meta", "link", "input", "br", "img", "hr", "path", "line", "rect"})

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.elements.append(element)
        if tag not in self._VOID:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i].tag == tag:
                del self._open[i:]
                break

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text += data

    def all(self, tag: str | None = None, **attrs: str | None) -> list[Element]:
        """Elements with ``tag`` whose attributes match (None: present with any value)."""
        return [
            e
            for e in self.elements
            if (tag is None or e.tag == tag)
            and all(
                k.replace("_", "-") in e.attrs and (v is None or e.attrs[k.replace("_", "-")] == v)
                for k, v in attrs.items()
            )
        ]

    def one(self, tag: str | None = None, **attrs: str | None) -> Element:
        found = self.all(tag, **attrs)
        assert len(found) == 1, f"{len(found)} elements match {tag} {attrs}"
        return found[0]

    def by_id(self, id_: str) -> Element:
        return self.one(id=id_)


def config_text(extra: str = "", services: str = "", web: str = "") -> str:
    return f"""
storage: {{url: "sqlite:///var/lib/pymon/p.db"}}
web: {{listen: "127.0.0.1:8080"{web}}}
defaults: {{flap_guard: {{failed: 1}}}}
notifications:
  channels:
    mail:
      type: email
      host: 127.0.0.1
      port: 2525
      username: pymon
      password: {SMTP_PASSWORD}
      from: pymon@example.org
      to: [ops@example.org]
{extra}
services:
  - {{name: down, type: tcp, host: 127.0.0.1, port: 9, tags: [core, db]}}
  - {{name: also-down, type: tcp, host: 127.0.0.1, port: 9}}
  - {{name: "{NASTY}", type: tcp, host: 127.0.0.1, port: 9, tags: ["{NASTY}"],
      description: "{NASTY}"}}
  - {{name: "{SLASHED}", type: tcp, host: 127.0.0.1, port: 9, enabled: false}}
{services}
"""


def failing(text: str) -> FakePort:
    """The engine for ``text`` with its down services failed, each with an open incident."""
    port = fake_port(text)
    for name in ("down", "also-down", NASTY):
        port.check(name, Status.FAILED, "connection refused (127.0.0.1 port 9)")
    return port


@pytest.fixture
def port() -> FakePort:
    return failing(config_text())


@pytest.fixture
async def client(port: FakePort) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(port) as c:
        yield c


async def page(client: httpx.AsyncClient, path: str, status: int = 200) -> Dom:
    answer = await client.get(path)
    assert answer.status_code == status, answer.text[:500]
    assert answer.headers["content-type"].startswith("text/html")
    return Dom(answer.text)


def _quote(name: str) -> str:
    return quote(name, safe="")


async def csrf(client: httpx.AsyncClient, path: str = "/") -> str:
    """The CSRF token a page hands out (the client keeps the matching cookie)."""
    return (await page(client, path)).one("meta", name="csrf-token").attrs["content"]


# Every page --------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
async def test_every_page_has_the_meta_tags_and_nav(client: httpx.AsyncClient, path: str) -> None:
    dom = await page(client, path)
    assert dom.one("meta", name="pymon-prefix").attrs["content"] == ""
    assert len(dom.one("meta", name="csrf-token").attrs["content"]) >= 32
    links = {a.attrs["href"] for a in dom.all("a", href=None)}
    assert {"/", "/services", "/maintenance", "/events", "/reports", "/health"} <= links
    assert dom.by_id("live")
    assert dom.by_id("refresh-interval").tag == "input"


async def test_pages_forbid_inline_scripts(client: httpx.AsyncClient) -> None:
    answer = await client.get("/services")
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "<script>" not in answer.text.replace(
        '<script type="module" src="/static/table.js"></script>', ""
    )


async def test_nothing_is_loaded_from_outside_pymon(client: httpx.AsyncClient) -> None:
    for path in [*PAGES, f"/services/{_quote('down')}"]:
        dom = await page(client, path)
        for e in dom.all("script") + dom.all("link"):
            url = e.attrs.get("src") or e.attrs.get("href", "")
            assert url.startswith("/static/"), url


# Overview ----------------------------------------------------------------------------


async def test_overview_counts_every_status(port: FakePort, client: httpx.AsyncClient) -> None:
    dom = await page(client, "/")
    counts = {e.attrs["data-count"]: int(e.text) for e in dom.all(data_count=None)}
    assert set(counts) == {"ok", "warn", "error", "failed", "unknown", "disabled"}
    assert counts["disabled"] == 1
    assert sum(counts.values()) == len({s.name for s in port.config.services})


async def test_overview_lists_problems_unacknowledged_first(
    port: FakePort, client: httpx.AsyncClient
) -> None:
    await port.acknowledge("also-down", "ann", "on it")
    dom = await page(client, "/")
    problems = dom.by_id("problems")
    names = [li.attrs["data-service"] for li in dom.all("li", data_service=None)]
    assert problems.tag == "ul"
    assert names[-1] == "also-down"
    assert {"down", NASTY} <= set(names[:-1])
    assert SLASHED not in names  # disabled is no problem


async def test_overview_shows_recent_events_and_about(client: httpx.AsyncClient) -> None:
    dom = await page(client, "/")
    assert "down" in dom.by_id("recent-events").text
    about = dom.by_id("about").text
    assert "Version" in about and "Uptime" in about and "Config" in about


# Services ----------------------------------------------------------------------------

COLUMNS = ["name", "status", "type", "message", "last_check", "last_change", "tags"]


async def test_services_table_follows_the_dom_contract(
    port: FakePort, client: httpx.AsyncClient
) -> None:
    dom = await page(client, "/services")
    assert dom.by_id("services").tag == "table"
    assert [th.attrs["data-sort"] for th in dom.all("th", data_sort=None)] == COLUMNS
    rows = dom.all("tr", data_service=None)
    assert {r.attrs["data-service"] for r in rows} == set({s.name for s in port.config.services})
    cells = {e.attrs["data-col"]: e for e in dom.all("td", data_col=None)[: len(COLUMNS)]}
    assert list(cells) == COLUMNS
    for row in rows:
        status = port.states[row.attrs["data-service"]].status.value
        assert f"status-{status}" in row.attrs["class"].split()
    statuses = [e.text for e in dom.all("td", data_col="status")]
    assert statuses == [port.states[r.attrs["data-service"]].status.value for r in rows]
    for id_, tag in [
        ("filter-text", "input"),
        ("filter-status", "select"),
        ("filter-tag", "select"),
        ("pager", "nav"),
    ]:
        assert dom.by_id(id_).tag == tag


async def test_services_sort_and_filter_without_javascript(client: httpx.AsyncClient) -> None:
    dom = await page(client, "/services?sort=-status,name")
    names = [r.attrs["data-service"] for r in dom.all("tr", data_service=None)]
    assert names[-1] == SLASHED  # disabled is the least severe
    assert dom.one("th", data_sort="status").attrs["aria-sort"] == "descending"
    assert dom.one("th", data_sort="name").attrs["aria-sort"] == "ascending"
    tagged = await page(client, "/services?tag=db")
    assert [r.attrs["data-service"] for r in tagged.all("tr", data_service=None)] == ["down"]
    found = await page(client, "/services?q=ALSO")
    assert [r.attrs["data-service"] for r in found.all("tr", data_service=None)] == ["also-down"]
    disabled = await page(client, "/services?status=disabled")
    assert [r.attrs["data-service"] for r in disabled.all("tr", data_service=None)] == [SLASHED]


async def test_services_page_renders_only_the_first_page_of_many() -> None:
    many = "\n".join(
        f"  - {{name: svc-{i:04d}, type: tcp, host: 127.0.0.1, port: 9, enabled: false}}"
        for i in range(2000)
    )
    async with app_client(fake_port(config_text(services=many))) as c:
        answer = await c.get("/services")
        dom = Dom(answer.text)
        rows = dom.all("tr", data_service=None)
        assert len(rows) == 100
        assert "svc-1999" not in answer.text
        assert "page 1 of 21" in dom.by_id("pager").text
        assert dom.one("a", rel="next").attrs["href"] == "/services?page=2"
        last = Dom((await c.get("/services?page=21")).text)
        names = [r.attrs["data-service"] for r in last.all("tr", data_service=None)]
        assert names[-1] == "svc-1999"


# Service -----------------------------------------------------------------------------


async def test_service_page_follows_the_dom_contract(
    port: FakePort, client: httpx.AsyncClient
) -> None:
    await port.acknowledge("down", "ann", "on it")
    dom = await page(client, "/services/down")
    assert dom.by_id("status").text == "failed"
    flags = {e.attrs["data-flag"] for e in dom.all(data_flag=None)}
    assert flags == {"confirmed", "acknowledged"}
    assert dom.by_id("message").text == port.states["down"].message
    assert dom.by_id("metrics").tag == "table"
    assert dom.by_id("chart").tag == "figure"
    assert "no data yet" in dom.by_id("chart").text  # a refused connection measures nothing
    assert dom.by_id("timeline").tag == "figure"
    assert dom.all("rect", **{"class": "status-failed"})
    assert "incident opened" in dom.by_id("events").text
    form = dom.by_id("ack-form")
    assert form.attrs["method"] == "post" and form.attrs["action"] == "/services/down/ack"
    assert "hidden" in form.attrs  # already acknowledged
    assert "hidden" not in dom.by_id("unack").attrs
    for id_ in ("run-now", "maint-form", "maint", "ack"):
        assert dom.by_id(id_)
    assert dom.one("input", name="duration")
    assert len(dom.all("input", name="csrf_token")) >= 4


async def test_service_page_shows_no_flag_that_is_not_set(
    port: FakePort, client: httpx.AsyncClient
) -> None:
    dom = await page(client, f"/services/{_quote(SLASHED)}")
    assert dom.by_id("status").text == "disabled"
    shown = {e.attrs["data-flag"] for e in dom.all(data_flag=None)}
    state = port.states[SLASHED]
    assert shown == {f for f in FLAGS if getattr(state, f, False)}
    assert "acknowledged" not in shown and "maintenance" not in shown
    assert "hidden" not in dom.by_id("run-now").attrs
    assert "disabled" in dom.by_id("run-now").attrs


async def test_service_page_draws_the_metric_history_and_timeline() -> None:
    port = fake_port(config_text(services="  - {name: up, type: tcp, host: 127.0.0.1, port: 9}"))
    for ms in (1.5, 2.0, 1.0):
        await port.clock.advance(60)
        port.check("up", Status.OK, "connected", {"connect_ms": ms})
    async with app_client(port) as c:
        dom = await page(c, "/services/up")
    assert dom.by_id("chart").attrs["data-metric"] == "connect_ms"
    line = dom.one("path", **{"class": "line"})
    assert line.attrs["d"].startswith("M") and line.attrs["d"].count(" L") == 2
    assert dom.all("rect", **{"class": "status-ok"})
    assert dom.one("tr", data_metric="connect_ms")
    assert dom.one("text", **{"class": "axis axis-title"}).text == "connect (ms)"
    ticks = [t.text for t in dom.all("text", **{"class": "axis tick"})]
    assert ticks == ["0.0", "0.5", "1.0", "1.5", "2.0"]


async def test_service_page_breaks_the_chart_at_a_hole() -> None:
    port = fake_port(config_text(services="  - {name: up, type: tcp, host: 127.0.0.1, port: 9}"))
    for step in (60, 60, 60, 50 * 60, 60, 60):  # checked every minute, then 50 minutes of nothing
        await port.clock.advance(step)
        port.check("up", Status.OK, "connected", {"connect_ms": 2.0})
    async with app_client(port) as c:
        dom = await page(c, "/services/up")
    lines = dom.all("path", **{"class": "line"})
    assert [line.attrs["d"].count(" L") for line in lines] == [2, 2]
    assert len(dom.all("rect", **{"class": "status-ok"})) == 2


async def test_a_name_with_a_slash_and_spaces_has_a_working_page(
    client: httpx.AsyncClient,
) -> None:
    listing = await page(client, "/services")
    href = next(
        a.attrs["href"]
        for a in listing.all("a", href=None)
        if a.attrs["href"].startswith("/services/") and "primary" in a.attrs["href"]
    )
    assert href == "/services/db%2Fprimary%20replica"
    dom = await page(client, href)
    assert dom.one("h1").text == SLASHED
    assert dom.by_id("run-form").attrs["action"] == f"{href}/run"


async def test_an_unknown_service_is_404(client: httpx.AsyncClient) -> None:
    answer = await client.get("/services/nope")
    assert answer.status_code == 404


# Actions -----------------------------------------------------------------------------


async def test_ack_form_post_acknowledges_and_redirects(
    port: FakePort, client: httpx.AsyncClient
) -> None:
    token = await csrf(client, "/services/down")
    answer = await client.post(
        "/services/down/ack", data={"csrf_token": token, "comment": "cable <b>pulled</b>"}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/services/down"
    ack = port.incidents["down"].ack
    assert ack is not None and ack.comment == "cable <b>pulled</b>" and ack.author == "local"
    dom = await page(client, "/services/down")
    assert "cable <b>pulled</b>" in dom.by_id("details").text


async def test_actions_through_fetch_answer_json_with_the_new_state(
    port: FakePort, client: httpx.AsyncClient
) -> None:
    token = await csrf(client, "/services/down")
    headers = {"Accept": "application/json", "X-CSRF-Token": token}
    acked = await client.post("/services/down/ack", data={"comment": "x"}, headers=headers)
    assert acked.status_code == 200
    assert acked.json()["service"]["acknowledged"] is True
    unacked = await client.post("/services/down/unack", headers=headers)
    assert unacked.json()["service"]["acknowledged"] is False
    again = await client.post("/services/down/unack", headers=headers)
    assert again.status_code == 409
    assert "not acknowledged" in again.json()["error"]
    ran = await client.post("/services/down/run", headers=headers)
    assert ran.status_code == 202
    off = await client.post(f"/services/{_quote(SLASHED)}/run", headers=headers)
    assert off.status_code == 409


async def test_maintenance_from_the_service_page_covers_only_that_service(
    port: FakePort, client: httpx.AsyncClient
) -> None:
    token = await csrf(client, "/")
    answer = await client.post(
        f"/services/{_quote(NASTY)}/maintenance",
        data={"duration": "2h", "comment": "upgrade"},
        headers={"Accept": "application/json", "X-CSRF-Token": token},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["service"]["maintenance"] is True
    assert port.states["down"].maintenance is False
    (window,) = port.adhoc.values()
    assert window.author == "local" and window.comment == "upgrade"
    bad = await client.post(
        "/services/down/maintenance",
        data={"duration": "soon"},
        headers={"Accept": "application/json", "X-CSRF-Token": token},
    )
    assert bad.status_code == 422
    assert "duration" in bad.json()["error"]


async def test_a_write_without_the_csrf_token_is_refused(
    port: FakePort, client: httpx.AsyncClient
) -> None:
    await csrf(client)  # the client now carries the CSRF cookie, as a browser would
    answer = await client.post("/services/down/ack", data={"comment": "forged"})
    assert answer.status_code == 403
    wrong = await client.post(
        "/services/down/ack", data={"comment": "forged", "csrf_token": "x" * 43}
    )
    assert wrong.status_code == 403
    assert port.incidents["down"].ack is None


# Maintenance, events, health ---------------------------------------------------------


async def test_maintenance_page_adds_and_lists_windows(
    port: FakePort, client: httpx.AsyncClient
) -> None:
    token = await csrf(client, "/maintenance")
    dom = await page(client, "/maintenance")
    assert dom.by_id("windows").tag == "table"
    assert dom.by_id("add-window").attrs["action"] == "/maintenance"
    added = await client.post(
        "/maintenance",
        data={"csrf_token": token, "tags": "db", "duration": "1h", "comment": "disk swap"},
    )
    assert added.status_code == 303
    dom = await page(client, "/maintenance")
    (row,) = dom.all("tr", data_window=None)
    assert "active" in row.attrs["class"].split()
    assert "disk swap" in row.text
    assert port.states["down"].maintenance


async def test_maintenance_form_errors_are_shown(client: httpx.AsyncClient) -> None:
    token = await csrf(client, "/maintenance")
    answer = await client.post(
        "/maintenance", data={"csrf_token": token, "services": "down", "comment": NASTY}
    )
    assert answer.status_code == 422
    dom = Dom(answer.text)
    assert "end or a duration" in dom.by_id("window-error").text
    assert NASTY not in answer.text


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"services": "down", "duration": "367d"}, "duration: must be at most 366 days"),
        (
            {"tags": "db", "start": "2030-01-01T00:00", "end": "2031-01-03T00:00"},
            "end: must be at most 366 days after start",
        ),
        ({"services": "down", "end": "2030-01-01T00:00", "duration": "1h"}, "duration: give"),
        ({"services": "down", "duration": "1h", "timezone": "Mars/Olympus"}, "timezone: "),
        ({"duration": "1h"}, "services: name services"),
    ],
)
async def test_the_form_takes_the_apis_bounds(
    port: FakePort, client: httpx.AsyncClient, fields: dict[str, str], error: str
) -> None:
    token = await csrf(client, "/maintenance")
    answer = await client.post(
        "/maintenance",
        data={"csrf_token": token, **fields},
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 422
    assert answer.json()["error"].startswith(error)
    assert port.called("add_maintenance") == []


async def test_the_form_reads_times_in_its_time_zone(
    port: FakePort, client: httpx.AsyncClient
) -> None:
    token = await csrf(client, "/maintenance")
    fields = {"tags": "db, core\nweb", "start": "2030-01-01T10:00", "duration": "366d"}
    answer = await client.post(
        "/maintenance",
        data={"csrf_token": token, "timezone": "Europe/Berlin", **fields},
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 201, answer.text
    ((window,),) = port.called("add_maintenance")
    assert window.tags == ("db", "core", "web") and window.author == "local"
    assert window.start.isoformat() == "2030-01-01T10:00:00+01:00"
    assert window.end.timestamp() - window.start.timestamp() == 366 * 86400


async def test_service_page_maintenance_takes_the_apis_bounds(
    port: FakePort, client: httpx.AsyncClient
) -> None:
    token = await csrf(client, "/services/down")
    headers = {"Accept": "application/json", "X-CSRF-Token": token}
    longest = await client.post(
        "/services/down/maintenance", data={"duration": "366d"}, headers=headers
    )
    assert longest.status_code == 200, longest.text
    assert longest.json()["message"] == "in maintenance for 366 d 0 h"
    longer = await client.post(
        "/services/down/maintenance", data={"duration": "367d"}, headers=headers
    )
    assert longer.status_code == 422
    assert longer.json()["error"] == "duration: must be at most 366 days"
    empty = await client.post("/services/down/maintenance", data={"duration": ""}, headers=headers)
    assert empty.status_code == 422 and empty.json()["error"].startswith("duration: ")
    assert len(port.called("add_maintenance")) == 1


async def test_events_page_lists_events_newest_first(client: httpx.AsyncClient) -> None:
    dom = await page(client, "/events")
    assert dom.by_id("events").tag == "table"
    times = [float(t.attrs["data-ts"]) for t in dom.all("time", data_ts=None)]
    assert times and times == sorted(times, reverse=True)
    only = await page(client, "/events?service=also-down")
    services = {e.text for e in only.all("td", data_col="service")}
    assert services == {"also-down"}


async def test_health_page_shows_config_storage_and_queues(
    port: FakePort, client: httpx.AsyncClient
) -> None:
    dom = await page(client, "/health")
    assert port.config.checksum in dom.by_id("config").text
    assert "sqlite" in dom.by_id("storage").text
    queues = dom.by_id("queues").text
    assert "Checks in flight" in queues and "Notices pending" in queues
    assert "off" in dom.by_id("acks").text


# Hostile input and secrets -----------------------------------------------------------


async def test_a_script_name_is_escaped_on_every_page(
    port: FakePort, client: httpx.AsyncClient
) -> None:
    token = await csrf(client)
    await client.post(
        f"/services/{_quote(NASTY)}/ack", data={"csrf_token": token, "comment": NASTY}
    )
    for path in [*PAGES, f"/services/{_quote(NASTY)}", f"/events?service={_quote(NASTY)}"]:
        answer = await client.get(path)
        assert answer.status_code == 200, path
        assert NASTY not in answer.text, path
        assert "<script>alert" not in answer.text, path
    services = (await client.get("/services")).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in services
    detail = Dom((await client.get(f"/services/{_quote(NASTY)}")).text)
    assert detail.one("h1").text == NASTY


async def test_no_secret_appears_in_any_page(port: FakePort, client: httpx.AsyncClient) -> None:
    for path in [*PAGES, "/services/down", "/health"]:
        answer = await client.get(path)
        assert SMTP_PASSWORD not in answer.text, path


# Static files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("pymon.css", "text/css"),
        ("live.js", "javascript"),
        ("table.js", "javascript"),
        ("service.js", "javascript"),
        ("common.js", "javascript"),
        ("overview.js", "javascript"),
        ("favicon.svg", "image/svg+xml"),
    ],
)
async def test_static_files_are_served_with_their_types(
    client: httpx.AsyncClient, name: str, kind: str
) -> None:
    answer = await client.get(f"/static/{name}")
    assert answer.status_code == 200
    assert kind in answer.headers["content-type"]


async def test_static_modules_import_only_siblings(client: httpx.AsyncClient) -> None:
    static = Path(__file__).parents[2] / "src" / "pymon" / "web" / "static"
    for module in static.glob("*.js"):
        for target in re.findall(r'from "([^"]+)"', module.read_text()):
            assert target.startswith("./") and (static / target[2:]).is_file(), (module, target)
            assert (await client.get(f"/static/{target[2:]}")).status_code == 200


# Under a base path -------------------------------------------------------------------


async def test_everything_works_under_a_base_path() -> None:
    text = config_text(web=', base_path: "/mon"')
    async with app_client(failing(text)) as c:
        for path in ["/mon/", "/mon/services", "/mon/maintenance", "/mon/events", "/mon/health"]:
            dom = await page(c, path)
            assert dom.one("meta", name="pymon-prefix").attrs["content"] == "/mon"
            for e in dom.all(href=None) + dom.all(src=None) + dom.all("form"):
                url = e.attrs.get("href") or e.attrs.get("src") or e.attrs.get("action", "")
                assert url.startswith("/mon/"), (path, e.tag, url)
        assert (await c.get("/mon/static/pymon.css")).status_code == 200
        assert (await c.get("/mon/services/down")).status_code == 200
        assert (await c.get("/services")).status_code == 404


# Login and read protection -----------------------------------------------------------


@pytest.fixture
def guarded() -> Callable[[], httpx.AsyncClient]:
    auth = f"""
  auth:
    read: true
    users: [{{name: ann, password_hash: "{hash_secret("correct horse")}"}}]
"""
    text = config_text(web="").replace(
        'web: {listen: "127.0.0.1:8080"}', 'web:\n  listen: "127.0.0.1:8080"' + auth
    )
    port = failing(text)
    return lambda: app_client(port)


async def test_pages_send_a_reader_without_credentials_to_login(
    guarded: Callable[[], httpx.AsyncClient],
) -> None:
    async with guarded() as c:
        answer = await c.get("/services?tag=db")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login?next=%2Fservices%3Ftag%3Ddb"
        dom = await page(c, "/login?next=/services")
        form = dom.by_id("login")
        assert form.attrs["method"] == "post" and form.attrs["action"] == "/login"
        assert dom.one("input", name="username") and dom.one("input", name="password")
        assert dom.one("input", name="csrf_token").attrs["value"]
        assert "hidden" in dom.by_id("login-error").attrs


async def test_login_with_a_wrong_password_says_so(
    guarded: Callable[[], httpx.AsyncClient],
) -> None:
    async with guarded() as c:
        token = await csrf(c, "/login")
        answer = await c.post(
            "/login", data={"csrf_token": token, "username": "ann", "password": "wrong"}
        )
        assert answer.status_code == 401
        dom = Dom(answer.text)
        assert "wrong name or password" in dom.by_id("login-error").text
        assert "hidden" not in dom.by_id("login-error").attrs


async def test_login_then_read_then_logout(guarded: Callable[[], httpx.AsyncClient]) -> None:
    async with guarded() as c:
        token = await csrf(c, "/login")
        answer = await c.post(
            "/login",
            data={
                "csrf_token": token,
                "username": "ann",
                "password": "correct horse",
                "next": "/services",
            },
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/services"
        dom = await page(c, "/services")
        assert "ann" in dom.one("span", **{"class": "user"}).text
        session_token = dom.one("meta", name="csrf-token").attrs["content"]
        out = await c.post("/logout", data={"csrf_token": session_token})
        assert out.status_code == 303
        assert (await c.get("/services")).status_code == 303


async def test_login_without_the_csrf_token_is_refused(
    guarded: Callable[[], httpx.AsyncClient],
) -> None:
    async with guarded() as c:
        await csrf(c, "/login")
        answer = await c.post("/login", data={"username": "ann", "password": "correct horse"})
        assert answer.status_code == 403
        assert "pymon_session" not in answer.headers.get("set-cookie", "")
