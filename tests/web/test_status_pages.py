"""Public status pages on a fake engine port, read in process: what they show, what they
never show, and that they answer without credentials."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.routing import APIRoute

from pymon.config.load import load_config_text
from pymon.model import Status
from pymon.uptime import DAY
from pymon.web.auth import PUBLIC_READS, hash_secret
from pymon.web.public import badges, status
from tests.support.port import FakePort, fake_port
from tests.web.helpers import app_client
from tests.web.status_helpers import TODAY, bucket, page_config
from tests.web.test_pages import Dom, Element


async def html(port: FakePort, path: str = "/status/public", status: int = 200) -> Dom:
    async with app_client(port) as client:
        answer = await client.get(path)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    return Dom(answer.text)


async def as_json(port: FakePort, path: str = "/status/public.json") -> Any:
    async with app_client(port) as client:
        answer = await client.get(path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    return answer.json()


def of_class(dom: Dom, tag: str, name: str) -> list[Element]:
    """The ``tag`` elements with the class ``name``."""
    return [e for e in dom.all(tag) if name in e.attrs.get("class", "").split()]


def component(dom: Dom, name: str) -> str:
    """The ``data-state`` of the component called ``name``."""
    for article in dom.all("article"):
        if article.text.strip().startswith(name):
            return article.attrs["data-state"]
    raise AssertionError(f"no component {name!r}")


async def test_the_page_shows_groups_components_and_their_states() -> None:
    port = fake_port(
        page_config(
            components="""
      - name: Data
        components:
          - {name: Database, service: private}
"""
        )
    )
    port.set_status("web-ok", Status.OK)
    port.set_status("api-1", Status.OK)
    port.set_status("api-2", Status.WARN)
    port.set_status("private", Status.FAILED)
    dom = await html(port)
    assert dom.one("h1").text == "Example status"
    groups = [
        (s.attrs["data-state"], s.text.split()[0]) for s in of_class(dom, "section", "sp-group")
    ]
    assert groups == [("degraded_performance", "Web"), ("major_outage", "Data")]
    assert [h.text for h in dom.all("h3")] == ["Website", "API", "Database"]
    assert component(dom, "Website") == "operational"
    assert component(dom, "API") == "degraded_performance"
    assert component(dom, "Database") == "major_outage"
    summary = dom.one("section", id="summary")
    assert (summary.attrs["data-state"], summary.text.strip()) == (
        "major_outage",
        "Major system outage",
    )
    assert not dom.all("script")


@pytest.mark.parametrize(
    ("status", "maintenance", "expected"),
    [
        (Status.OK, False, "operational"),
        (Status.WARN, False, "degraded_performance"),
        (Status.ERROR, False, "partial_outage"),
        (Status.FAILED, False, "major_outage"),
        (Status.UNKNOWN, False, "no_data"),
        (Status.FAILED, True, "under_maintenance"),
        (Status.OK, True, "under_maintenance"),
    ],
)
async def test_one_service_maps_to_the_public_vocabulary(
    status: Status, maintenance: bool, expected: str
) -> None:
    port = fake_port(page_config())
    port.set_status("web-ok", status, maintenance=maintenance)
    assert component(await html(port), "Website") == expected


async def test_a_disabled_service_has_no_data() -> None:
    port = fake_port(page_config().replace("port: 80,", "port: 80, enabled: false,"))
    assert component(await html(port), "Website") == "no_data"


@pytest.mark.parametrize(
    ("one", "two", "expected"),
    [
        (Status.OK, Status.OK, "operational"),
        (Status.OK, Status.WARN, "degraded_performance"),
        # some but not all down: partial, even when the one down failed outright
        (Status.OK, Status.FAILED, "partial_outage"),
        (Status.WARN, Status.ERROR, "partial_outage"),
        # every one down: major, even when each only errs
        (Status.ERROR, Status.ERROR, "major_outage"),
        (Status.ERROR, Status.FAILED, "major_outage"),
        # a service without data is left out
        (Status.UNKNOWN, Status.FAILED, "major_outage"),
        (Status.UNKNOWN, Status.UNKNOWN, "no_data"),
    ],
)
async def test_several_services_make_one_component(one: Status, two: Status, expected: str) -> None:
    port = fake_port(page_config())
    port.set_status("api-1", one)
    port.set_status("api-2", two)
    assert component(await html(port), "API") == expected


async def test_a_component_of_services_all_in_maintenance_is_under_maintenance() -> None:
    port = fake_port(page_config())
    port.set_status("api-1", Status.FAILED, maintenance=True)
    port.set_status("api-2", Status.OK, maintenance=True)
    assert component(await html(port), "API") == "under_maintenance"
    port.set_status("api-2", Status.FAILED, maintenance=False)
    await port.clock.advance(60)  # past the cache
    assert component(await html(port), "API") == "major_outage"


async def test_ninety_bars_coloured_by_each_days_worst_status() -> None:
    port = fake_port(page_config())
    port.set_status("web-ok", Status.OK)
    port.buckets += [
        bucket("web-ok", TODAY, {"ok": 70000}),
        bucket("web-ok", TODAY - DAY, {"ok": 86000, "warn": 400}),
        bucket("web-ok", TODAY - 2 * DAY, {"ok": 43200, "failed": 43200}),
        bucket("web-ok", TODAY - 3 * DAY, {"ok": 80000, "error": 3200}, maintenance={"ok": 3200}),
        bucket("web-ok", TODAY - 89 * DAY, {"ok": 86400}),
        bucket("web-ok", TODAY - 90 * DAY, {"failed": 86400}),  # 91 days ago: not shown
    ]
    dom = await html(port)
    article = next(a for a in dom.all("article") if "Website" in a.text)
    start = dom.elements.index(article)
    bars = [e for e in dom.elements[start:] if e.tag == "li"][:90]
    assert len(of_class(dom, "ol", "sp-bars")) == 2
    states = [bar.attrs["data-state"] for bar in bars]
    assert states[-1] == "operational"
    assert states[-2] == "degraded_performance"
    assert states[-3] == "major_outage"
    assert states[-4] == "partial_outage"
    assert states[0] == "operational"
    assert states[1:-4] == ["no_data"] * 85
    assert bars[-3].attrs["title"] == "2026-05-26: 50.00 % up, major outage"
    assert bars[-4].attrs.get("data-maintenance") == "yes"
    assert "(maintenance 53 min)" in bars[-4].attrs["title"]
    assert "data-maintenance" not in bars[-1].attrs
    assert (
        bars[1].attrs["title"] == f"{datetime.fromtimestamp(TODAY - 88 * DAY, UTC).date()}: no data"
    )
    assert bars[-1].attrs["title"].startswith("2026-05-28:")
    uptime = article.text.split("today")[0]
    # 366,000 s up (70,000 + 86,000 + 400 + 43,200 + 80,000 + 86,400) and 46,400 s down
    # (43,200 + 3,200): the time in maintenance and the day 91 days ago left out
    assert "88.75 % uptime" in uptime


async def test_the_bar_of_a_tagged_component_takes_the_worst_of_its_services() -> None:
    port = fake_port(page_config())
    port.buckets += [
        bucket("api-1", TODAY - DAY, {"ok": 86400}),
        bucket("api-2", TODAY - DAY, {"ok": 82800, "error": 3600}),
    ]
    board = await as_json(port)
    api = board["groups"][0]["components"][1]
    assert api["name"] == "API"
    yesterday = api["days"][-2]
    assert yesterday == {
        "date": "2026-05-27",
        "state": "partial_outage",
        "uptime_pct": round(100 * 82800 / 86400, 3),
        "maintenance_minutes": 0.0,
    }


async def test_open_incidents_show_as_updates_with_the_acknowledgement_comment() -> None:
    port = fake_port(page_config())
    port.set_status("web-ok", Status.FAILED)
    port.open_incident("web-ok")
    await port.clock.advance(120)
    await port.acknowledge("web-ok", "alice@ops.example", "Replacing the load balancer")
    port.set_status("private", Status.FAILED)
    port.open_incident("private")  # on no page: not listed
    dom = await html(port)
    (update,) = of_class(dom, "li", "sp-incident")
    text = " ".join(update.text.split())
    assert text.startswith("Website: Major outage since 2026-05-28 20:26 UTC.")
    assert "Replacing the load balancer" in text
    assert "alice" not in dom_text(dom)
    (note,) = (await as_json(port))["incidents"]
    assert note == {
        "components": ["Website"],
        "since": "2026-05-28T20:26:40Z",
        "state": "major_outage",
        "acknowledged": True,
        "comment": "Replacing the load balancer",
    }


def dom_text(dom: Dom) -> str:
    return " ".join(e.text for e in dom.all("body"))


async def test_planned_maintenance_of_the_next_seven_days_is_listed() -> None:
    windows = """
maintenance:
  - {name: Database upgrade, services: [api-*], comment: "db7.internal swap",
     start: "2026-05-30T02:00:00Z", end: "2026-05-30T03:00:00Z"}
  - {name: Later, services: [web-ok], start: "2026-06-10T02:00:00Z", end: "2026-06-10T03:00:00Z"}
  - {name: Private work, services: [private],
     start: "2026-05-29T02:00:00Z", end: "2026-05-29T03:00:00Z"}
  - {name: Now, tags: [web], start: "2026-05-28T20:00:00Z", end: "2026-05-28T21:00:00Z"}
"""
    port = fake_port(page_config(extra=windows))
    dom = await html(port)
    listed = [" ".join(li.text.split()) for li in of_class(dom, "li", "sp-window")]
    assert listed == [
        "Now (in progress): 2026-05-28 20:00 UTC to 2026-05-28 21:00 UTC, Website.",
        "Database upgrade: 2026-05-30 02:00 UTC to 2026-05-30 03:00 UTC, API.",
    ]
    assert "db7.internal" not in dom_text(dom)
    notes = (await as_json(port))["maintenance"]
    assert [n["name"] for n in notes] == ["Now", "Database upgrade"]
    assert "comment" not in notes[1]


async def test_an_unknown_slug_is_a_404_in_both_forms() -> None:
    port = fake_port(page_config())
    async with app_client(port) as client:
        for path in ("/status/nope", "/status/nope.json", "/status/", "/status/public.xml"):
            assert (await client.get(path)).status_code == 404, path


async def test_the_json_form_holds_the_same_content() -> None:
    port = fake_port(page_config(page="    description: Everything we run."))
    port.set_status("web-ok", Status.OK)
    port.set_status("api-1", Status.ERROR)
    port.buckets.append(bucket("web-ok", TODAY - DAY, {"ok": 86400}))
    board = await as_json(port)
    assert {k: board[k] for k in ("slug", "title", "description", "logo", "generated_at")} == {
        "slug": "public",
        "title": "Example status",
        "description": "Everything we run.",
        "logo": None,
        "generated_at": "2026-05-28T20:26:40Z",
    }
    assert board["status"] == {"state": "partial_outage", "description": "Partial system outage"}
    (group,) = board["groups"]
    assert (group["name"], group["state"]) == ("Web", "partial_outage")
    website, api = group["components"]
    assert (website["name"], website["state"], website["uptime_pct"]) == (
        "Website",
        "operational",
        100.0,
    )
    assert (api["state"], api["uptime_pct"], api["message"]) == ("partial_outage", None, None)
    assert len(website["days"]) == 90
    assert website["days"][0]["date"] == "2026-02-28"
    assert website["days"][-2]["state"] == "operational"


async def test_show_details_shows_the_message() -> None:
    port = fake_port(page_config(page="    show_details: true"))
    port.set_status("web-ok", Status.ERROR, "HTTP 503 from the origin")
    dom = await html(port)
    assert of_class(dom, "p", "sp-message")[0].text == "HTTP 503 from the origin"
    website = (await as_json(port))["groups"][0]["components"][0]
    assert website["message"] == "HTTP 503 from the origin"


SECRETS = {
    "name": "zq-internal-web-07",
    "host": "web07.corp.invalid",
    "url": "https://web07.corp.invalid:48213/healthz",
    "port": "48213",
    "message": "connection refused by 10.9.8.7",
    "tag": "zq-secret-tag",
    "other_tag": "zq-hidden-tag",
}


def leaky_config(show_details: bool = False) -> str:
    s = SECRETS
    return f"""
web: {{listen: "127.0.0.1:8080"}}
services:
  - {{name: {s["name"]}, type: http, url: "{s["url"]}", tags: [{s["tag"]}, {s["other_tag"]}]}}
  - {{name: zq-db, type: tcp, host: {s["host"]}, port: {s["port"]}, tags: [{s["tag"]}]}}
maintenance:
  - {{name: Upgrade, services: ["zq-*"], comment: "{s["host"]} reboot",
     start: "2026-05-29T02:00:00Z", end: "2026-05-29T03:00:00Z"}}
status_pages:
  - slug: public
    title: Example status
    show_details: {"true" if show_details else "false"}
    groups:
      - name: Web
        components:
          - {{name: Website, service: {s["name"]}}}
          - {{name: Backend, tags: [{s["tag"]}]}}
"""


@pytest.mark.parametrize("path", ["/status/public", "/status/public.json"])
async def test_no_internal_detail_leaks(path: str) -> None:
    port = fake_port(leaky_config())
    for name in (SECRETS["name"], "zq-db"):
        port.set_status(name, Status.FAILED, SECRETS["message"])
        port.open_incident(name)
    await port.acknowledge("zq-db", "bob", "On it")
    port.buckets.append(bucket(SECRETS["name"], TODAY - DAY, {"ok": 86000, "failed": 400}))
    async with app_client(port) as client:
        answer = await client.get(path)
    assert answer.status_code == 200
    body = answer.text
    assert "Website" in body and "Backend" in body and "On it" in body and "Upgrade" in body
    for what, secret in SECRETS.items():
        assert secret not in body, f"the page shows the service's {what}"
    assert "zq-db" not in body and "bob" not in body


async def test_show_details_shows_messages_but_still_no_names_or_hosts() -> None:
    port = fake_port(leaky_config(show_details=True))
    port.set_status(SECRETS["name"], Status.FAILED, "refused")
    async with app_client(port) as client:
        body = (await client.get("/status/public")).text
    assert "refused" in body
    for what in ("name", "host", "url", "port", "tag"):
        assert SECRETS[what] not in body, what


async def test_pages_and_badges_need_no_credentials_when_reading_does() -> None:
    web = f"""web:
  listen: "127.0.0.1:8080"
  auth:
    read: true
    users: [{{name: ann, password_hash: "{hash_secret("correct horse")}"}}]"""
    port = fake_port(page_config(web=web))
    port.set_status("web-ok", Status.OK)
    async with app_client(port, peer="192.0.2.10") as client:
        assert (await client.get("/api/v1/services")).status_code == 401
        assert (await client.get("/")).status_code == 303  # to the login page
        for path in (
            "/status/public",
            "/status/public.json",
            "/badge/web-ok/status.svg",
            "/badge/web-ok/uptime.svg?window=30d",
            "/badge/web-ok/response.svg?window=24h",
            "/static/status.css",
        ):
            answer = await client.get(path)
            assert answer.status_code == 200, path
            assert "set-cookie" not in answer.headers, path


async def test_the_page_is_served_from_the_cache_until_it_goes_stale() -> None:
    port = fake_port(page_config())
    port.set_status("web-ok", Status.OK)
    async with app_client(port) as client:
        first = await asyncio.gather(*(client.get("/status/public") for _ in range(20)))
        assert {a.text for a in first} == {first[0].text}
        assert client._transport.app.state.snapshots.made == 1  # type: ignore[attr-defined]
        assert first[0].headers["cache-control"] == "public, max-age=10"
        port.set_status("web-ok", Status.FAILED)
        await port.clock.advance(5)
        assert 'data-state="operational"' in (await client.get("/status/public")).text
        await port.clock.advance(6)
        fresh = (await client.get("/status/public")).text
        assert component(Dom(fresh), "Website") == "major_outage"


async def test_a_large_page_is_sent_gzipped_to_who_takes_it() -> None:
    port = fake_port(page_config())
    async with app_client(port) as client:
        zipped = await client.get("/status/public", headers={"accept-encoding": "gzip"})
        plain = await client.get("/status/public", headers={"accept-encoding": "identity"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers
    assert zipped.text == plain.text  # httpx decodes it
    assert zipped.headers["vary"] == "Accept-Encoding"


async def test_the_page_links_its_stylesheet_under_base_path() -> None:
    port = fake_port(page_config(web='web: {listen: "127.0.0.1:8080", base_path: /mon}'))
    async with app_client(port) as client:
        assert (await client.get("/status/public")).status_code == 404
        answer = await client.get("/mon/status/public")
        assert answer.status_code == 200
        (link,) = Dom(answer.text).all("link", rel="stylesheet")
        assert link.attrs["href"].startswith("/mon/static/status.css")
        assert (await client.get(link.attrs["href"])).status_code == 200
        assert (await client.get("/mon/badge/web-ok/status.svg")).status_code == 200


async def test_hostile_public_texts_are_escaped() -> None:
    text = page_config().replace("title: Example status", "title: '<script>alert(1)</script>'")
    text = text.replace("{name: Website,", "{name: '<img src=x onerror=alert(2)>',")
    port = fake_port(text)
    async with app_client(port) as client:
        body = (await client.get("/status/public")).text
        data = json.loads((await client.get("/status/public.json")).text)
    assert "<script>alert" not in body and "<img src=x" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert data["title"] == "<script>alert(1)</script>"


async def test_cache_zero_renders_every_request() -> None:
    port = fake_port(page_config(page="    cache: 0s"))
    port.set_status("web-ok", Status.OK)
    async with app_client(port) as client:
        first = await client.get("/status/public")
        assert first.headers["cache-control"] == "no-cache"
        port.set_status("web-ok", Status.FAILED)
        assert component(Dom((await client.get("/status/public")).text), "Website") == (
            "major_outage"
        )


async def test_credentials_sent_to_a_public_route_are_neither_checked_nor_refused() -> None:
    web = f"""web:
  listen: "127.0.0.1:8080"
  auth:
    read: true
    tokens: [{{name: bot, token_hash: "{hash_secret("right-token")}"}}]"""
    port = fake_port(page_config(web=web))
    wrong = {"authorization": "Bearer wrong-token"}
    async with app_client(port, peer="192.0.2.10", headers=wrong) as client:
        # A wrong token is refused where it counts, and counted against the client...
        assert (await client.get("/api/v1/services")).status_code == 403
        # ...but never on a public route, however often it comes.
        for _ in range(30):
            assert (await client.get("/status/public")).status_code == 200
            assert (await client.get("/badge/web-ok/status.svg")).status_code == 200


def test_every_public_route_lies_under_the_public_prefixes() -> None:
    routes = [*status.router.routes, *badges.router.routes]
    paths = [route.path for route in routes if isinstance(route, APIRoute)]
    assert len(paths) == 5
    assert all(path.startswith(PUBLIC_READS) for path in paths), paths


async def test_a_reloaded_config_is_served_at_once() -> None:
    port = fake_port(page_config())
    async with app_client(port) as client:
        assert "Example status" in (await client.get("/status/public")).text
        assert (await client.get("/badge/private/status.svg")).status_code == 404
        # What a reload does: the engine answers with the new config from then on.
        renamed = page_config().replace("title: Example status", "title: Renamed status")
        port._config = load_config_text(renamed.replace("port: 83}", "port: 83, badge: true}"))
        assert "Renamed status" in (await client.get("/status/public")).text
        assert (await client.get("/badge/private/status.svg")).status_code == 200
