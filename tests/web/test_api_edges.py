"""The API's edges: every integer parameter bounded (a 422, never a 500 from the store),
every error body ``{"error": ...}``, a 405's ``Allow`` naming every method the path
takes, and an OpenAPI document that declares the errors the routes give and no body
they refuse."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pymon.web.api.common import MAX_OFFSET
from tests.support.port import FakePort, fake_port
from tests.web.helpers import app_client, client_for, running

HUGE = str(2**63)  # one past SQLite's largest integer: OverflowError in the driver
CONFIG = """
services:
  - {name: a, type: tcp, host: 127.0.0.1, port: 9}
"""
LISTS = [
    "/api/v1/services",
    "/api/v1/services/a/history",
    "/api/v1/events",
    "/api/v1/maintenance",
    "/api/v1/notifications",
]


@pytest.fixture
def port() -> FakePort:
    return fake_port(CONFIG)


@pytest.fixture
async def client(port: FakePort) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(port) as c:
        yield c


@pytest.mark.parametrize("route", LISTS)
@pytest.mark.parametrize(
    ("param", "value"), [("offset", HUGE), ("offset", str(MAX_OFFSET + 1)), ("limit", HUGE)]
)
async def test_an_integer_beyond_its_bound_is_a_422_naming_it(
    client: httpx.AsyncClient, route: str, param: str, value: str
) -> None:
    answer = await client.get(route, params={param: value})
    assert answer.status_code == 422
    assert answer.json()["fields"][0]["field"] == param


@pytest.mark.parametrize("route", LISTS)
async def test_the_deepest_offset_is_answered(client: httpx.AsyncClient, route: str) -> None:
    assert (await client.get(route, params={"offset": MAX_OFFSET})).status_code == 200


async def test_a_huge_offset_never_reaches_the_real_store(tmp_path: Path) -> None:
    text = f"""
storage: {{url: "sqlite:///{tmp_path}/p.db"}}
web: {{listen: "127.0.0.1:0"}}
services:
  - {{name: a, type: tcp, host: 127.0.0.1, port: 9, interval: 1h}}
"""
    async with running(text) as daemon, client_for(daemon) as c:
        for route in ("/api/v1/notifications", "/api/v1/services/a/history", "/api/v1/events"):
            answer = await c.get(route, params={"offset": HUGE})
            assert answer.status_code == 422, (route, answer.text)
        assert (await c.get("/healthz")).status_code == 200


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("GET", "/api/v1/nothing-here", 404),
        ("GET", "/static/no-such-file.css", 404),
        ("PUT", "/api/v1/services", 405),
        ("PATCH", "/healthz", 405),
    ],
)
async def test_every_error_body_is_an_error(
    client: httpx.AsyncClient, method: str, url: str, status: int
) -> None:
    answer = await client.request(method, url)
    assert answer.status_code == status
    body = answer.json()
    assert set(body) == {"error"} and body["error"]


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("/api/v1/services/a/ack", {"GET", "POST", "DELETE"}),  # GET: a service named "a/ack"
        ("/api/v1/heartbeat/some-token", {"GET", "POST"}),
        ("/api/v1/maintenance", {"GET", "POST"}),
        ("/healthz", {"GET"}),
    ],
)
async def test_a_405_allows_every_method_of_the_path(
    client: httpx.AsyncClient, url: str, allowed: set[str]
) -> None:
    answer = await client.request("PATCH", url)
    assert answer.status_code == 405
    assert {m.strip() for m in answer.headers["allow"].split(",")} == allowed


# -- the OpenAPI document ------------------------------------------------------------------


@pytest.fixture
async def doc(client: httpx.AsyncClient) -> dict[str, Any]:
    document: dict[str, Any] = (await client.get("/api/v1/openapi.json")).json()
    return document


@pytest.mark.parametrize(
    ("method", "path", "codes"),
    [
        ("get", "/api/v1/services", {"401", "403", "422"}),
        ("get", "/api/v1/services/{name}", {"401", "403", "404"}),
        ("get", "/api/v1/services/{name}/history", {"401", "403", "404", "422"}),
        ("post", "/api/v1/services/{name}/ack", {"400", "401", "403", "404", "409", "422"}),
        ("delete", "/api/v1/services/{name}/ack", {"401", "403", "404", "409"}),
        ("post", "/api/v1/services/{name}/run", {"401", "403", "404", "409"}),
        ("post", "/api/v1/maintenance", {"400", "401", "403", "422"}),
        ("delete", "/api/v1/maintenance/{window_id}", {"401", "403", "404", "409"}),
        ("get", "/api/v1/notifications", {"401", "403", "422"}),
        ("get", "/api/v1/nodes", {"401", "403"}),
        ("get", "/api/v1/heartbeat/{token}", {"404", "422"}),
        ("post", "/api/v1/reload", {"401", "403", "422"}),
    ],
)
def test_the_document_declares_the_errors_a_route_gives(
    doc: dict[str, Any], method: str, path: str, codes: set[str]
) -> None:
    assert codes <= set(doc["paths"][path][method]["responses"])


def test_the_document_declares_the_error_bodies_the_routes_send(doc: dict[str, Any]) -> None:
    operation = doc["paths"]["/api/v1/services/{name}/history"]["get"]
    refs = {
        code: answer["content"]["application/json"]["schema"]["$ref"].rpartition("/")[2]
        for code, answer in operation["responses"].items()
        if code != "200"
    }
    assert refs == {"401": "ErrorBody", "403": "ErrorBody", "404": "ErrorBody"} | {
        "422": "InvalidRequest"
    }
    assert doc["components"]["schemas"]["InvalidRequest"]["required"] == ["error", "fields"]
    for parameter in operation["parameters"]:
        if parameter["schema"].get("type") == "integer":
            assert "maximum" in parameter["schema"], parameter["name"]


@pytest.mark.parametrize(
    ("schema", "body", "valid"),
    [
        ("MaintenanceRequestBody", {}, False),
        ("MaintenanceRequestBody", {"services": []}, False),
        ("MaintenanceRequestBody", {"services": ["web-*"]}, False),
        ("MaintenanceRequestBody", {"services": ["web-*"], "duration": "2h", "end": None}, False),
        ("MaintenanceRequestBody", {"services": ["web-*"], "duration": "2h"}, True),
        ("MaintenanceRequestBody", {"tags": ["db"], "duration": 3600}, True),
        ("MaintenanceRequestBody", {"tags": ["db"], "duration": "367d"}, False),
        ("AckRequestBody", {"expires": -5}, False),
        ("AckRequestBody", {"expires": 0}, False),
        ("AckRequestBody", {"expires": "-5s"}, False),
        ("AckRequestBody", {"expires": 10**12}, False),
        ("AckRequestBody", {"expires": "2h"}, True),
        ("AckRequestBody", {"expires": 90}, True),
    ],
)
def test_the_document_allows_no_body_the_route_refuses(
    doc: dict[str, Any], schema: str, body: dict[str, Any], valid: bool
) -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs", reason="comes with schemathesis (dev)")
    assert jsonschema_rs.is_valid(doc["components"]["schemas"][schema], body) is valid


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/v1/maintenance", {"services": ["a"], "duration": "2h"}),
        ("/api/v1/maintenance", {"tags": ["db"], "duration": 3600}),
    ],
)
async def test_bodies_the_document_allows_are_taken(
    client: httpx.AsyncClient, url: str, body: dict[str, Any]
) -> None:
    assert (await client.post(url, json=body)).status_code == 201


async def test_an_acknowledgement_longer_than_a_year_is_refused(
    client: httpx.AsyncClient, port: FakePort
) -> None:
    port.open_incident("a")
    answer = await client.post("/api/v1/services/a/ack", json={"expires": "367d"})
    assert answer.status_code == 422
    assert answer.json()["fields"] == [{"field": "expires", "error": "must be at most 366 days"}]
    assert (await client.post("/api/v1/services/a/ack", json={"expires": "366d"})).is_success
