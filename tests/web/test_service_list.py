"""The list of services for machines: ``fields=`` (only the keys asked for, an unknown
one named in a 422), NDJSON (one service per line, the same content as the JSON), and
each service's JSON kept between listings yet never stale."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from pymon.model import Status
from pymon.web.api.formats import chosen_format
from pymon.web.fragments import ServiceFragments
from pymon.web.views import SERVICE_FIELDS, service_json
from tests.support.port import FakePort, fake_port
from tests.web.helpers import app_client

CONFIG = """
defaults: {flap_guard: {failed: 1}}
services:
  - {name: web, type: tcp, host: 127.0.0.1, port: 9, tags: [core]}
  - {name: db/primary, type: tcp, host: 127.0.0.1, port: 9, tags: [db, core]}
  - {name: "<b>bold</b> ünïcode", type: tcp, host: 127.0.0.1, port: 9}
  - {name: old, type: tcp, host: 127.0.0.1, port: 9, enabled: false}
"""
NDJSON = "application/x-ndjson"


@pytest.fixture
def port() -> FakePort:
    """``web`` failed with an open incident, ``db/primary`` ok with metrics."""
    port = fake_port(CONFIG)
    port.check("web", Status.FAILED, "connection refused")
    port.check("db/primary", Status.OK, "connected", {"connect_ms": 1.5})
    return port


@pytest.fixture
async def client(port: FakePort) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(port) as c:
        yield c


def lines(answer: httpx.Response) -> list[dict[str, object]]:
    assert answer.text.endswith("\n")
    return [json.loads(line) for line in answer.text.splitlines()]


async def test_the_listing_is_each_services_json(port: FakePort, client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/v1/services")
    assert answer.headers["content-type"] == "application/json"
    listed = answer.json()
    assert list(listed) == ["total", "offset", "limit", "services"]
    assert listed["services"] == [service_json(view) for view in await port.services()]


async def test_service_fields_are_the_keys_of_its_json(port: FakePort) -> None:
    for view in await port.services():
        assert tuple(service_json(view)) == SERVICE_FIELDS


async def test_fields_gives_only_those_keys_in_the_order_asked(
    client: httpx.AsyncClient,
) -> None:
    whole = (await client.get("/api/v1/services")).json()
    cut = (await client.get("/api/v1/services?fields=status,name,last_check,status")).json()
    assert cut["total"] == whole["total"] == 4
    assert [list(s) for s in cut["services"]] == [["status", "name", "last_check"]] * 4
    assert cut["services"] == [
        {"status": s["status"], "name": s["name"], "last_check": s["last_check"]}
        for s in whole["services"]
    ]


@pytest.mark.parametrize("fields", ["name,bogus,status", "bogus", "name,", ""])
async def test_an_unknown_field_is_a_422_naming_it(client: httpx.AsyncClient, fields: str) -> None:
    answer = await client.get("/api/v1/services", params={"fields": fields})
    assert answer.status_code == 422
    body = answer.json()
    assert body["error"] == "invalid request"
    [error] = body["fields"]
    assert error["field"] == "fields"
    unknown = "bogus" if "bogus" in fields else ""
    assert f"unknown field {unknown!r}" in error["error"]
    assert "last_check" in error["error"]  # says what there is


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({"format": "ndjson"}, {}),
        ({}, {"Accept": NDJSON}),
        ({}, {"Accept": f"application/json;q=0.5, {NDJSON}"}),
    ],
)
async def test_ndjson_is_the_json_one_line_per_service(
    client: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str]
) -> None:
    whole = (await client.get("/api/v1/services")).json()
    answer = await client.get("/api/v1/services", params=params, headers=headers)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == NDJSON
    assert answer.headers["x-total-count"] == "4"
    assert lines(answer) == whole["services"]


async def test_ndjson_takes_the_filters_pages_and_fields_of_the_json(
    client: httpx.AsyncClient,
) -> None:
    asked = {"tag": "core", "limit": "1", "offset": "1", "fields": "name,status"}
    page = (await client.get("/api/v1/services", params=asked)).json()
    answer = await client.get("/api/v1/services", params=asked | {"format": "ndjson"})
    assert answer.headers["x-total-count"] == str(page["total"]) == "2"
    assert lines(answer) == page["services"] == [{"name": "db/primary", "status": "ok"}]
    empty = await client.get("/api/v1/services", params={"tag": "none", "format": "ndjson"})
    assert empty.status_code == 200 and empty.text == ""
    assert empty.headers["x-total-count"] == "0"


async def test_format_json_wins_over_the_accept_header(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/v1/services?format=json", headers={"Accept": NDJSON})
    assert answer.headers["content-type"] == "application/json"
    bad = await client.get("/api/v1/services?format=xml")
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "format"


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        ("", "json"),
        ("*/*", "json"),
        (NDJSON, "ndjson"),
        (f"{NDJSON}, */*", "ndjson"),
        (f"application/json, {NDJSON}", "json"),
        (f"{NDJSON}, application/json", "ndjson"),
        (f"{NDJSON};q=0.4, application/json;q=0.5", "json"),
        (f"application/json;q=0, {NDJSON};q=0.1", "ndjson"),
        (f"{NDJSON};q=0", "json"),
        (f"{NDJSON};q=junk", "json"),
        ("APPLICATION/X-NDJSON", "ndjson"),
    ],
)
def test_the_accept_header_chooses_by_quality_then_order(accept: str, chosen: str) -> None:
    assert chosen_format(None, accept) == chosen


async def test_a_listing_shows_what_changed_since_the_last_one(
    port: FakePort, client: httpx.AsyncClient
) -> None:
    def web_of(answer: httpx.Response) -> dict[str, object]:
        return next(s for s in answer.json()["services"] if s["name"] == "web")

    before = web_of(await client.get("/api/v1/services"))
    assert before["status"] == "failed" and before["acknowledged"] is False
    await port.acknowledge("web", "ann", "on it")  # a new incident, the same state
    acked = web_of(await client.get("/api/v1/services"))
    assert acked["acknowledged"] is True and acked["seq"] == before["seq"]
    port.check("web", Status.OK, "back")  # a new state
    for fields in ("", "&fields=name,status,message"):
        listed = web_of(await client.get(f"/api/v1/services?format=json{fields}"))
        assert (listed["status"], listed["message"]) == ("ok", "back")
    by_line = lines(await client.get("/api/v1/services?format=ndjson"))
    assert next(s for s in by_line if s["name"] == "web")["status"] == "ok"


async def test_fragments_are_kept_while_the_views_parts_are_the_same(port: FakePort) -> None:
    fragments = ServiceFragments(selections=2)
    whole, cut = fragments.encoder(), fragments.encoder(("name",))
    web = await port.service("web")
    assert web is not None
    first = whole(web)
    assert whole(web) is first  # the same parts: the same bytes, not encoded again
    assert json.loads(first) == service_json(web)
    assert json.loads(cut(web)) == {"name": "web"}
    port.check("web", Status.OK, "back")
    again = await port.service("web")
    assert again is not None and whole(again) is not first
    assert json.loads(whole(again))["status"] == "ok"

    for view in await port.services():
        whole(view), cut(view)
    assert len(fragments) == 8
    fragments.keep_only(["web", "old"])  # the others went with a reload
    assert len(fragments) == 4
    fragments.encoder(("status",))  # a third selection: the least recently used goes
    assert len(fragments) == 2


async def test_a_nan_metric_is_null_as_fastapi_writes_it() -> None:
    port = fake_port(CONFIG)
    port.check("web", Status.WARN, "odd", {"ratio": float("nan"), "huge": float("inf")})
    async with app_client(port) as c:
        for path in ("/api/v1/services", "/api/v1/services/web"):
            answer = await c.get(path)
            assert "NaN" not in answer.text and "Infinity" not in answer.text
        listed = (await c.get("/api/v1/services")).json()["services"][0]
        assert listed["metrics"] == {"ratio": None, "huge": None}
