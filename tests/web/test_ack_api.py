"""Acknowledging through the API on a fake engine port, with the refusals (``pymon
ack`` against a real daemon is in test_end_to_end.py)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from pymon.model import Status
from tests.support.port import FakePort, fake_port
from tests.web.helpers import app_client

TOO_LONG = "'99999999d' is longer than 3650d (ten years), the longest duration taken"
CONFIG = """
defaults: {flap_guard: {failed: 1}}
services:
  - {name: down, type: tcp, host: 127.0.0.1, port: 9}
  - {name: "we ird <b>", type: tcp, host: 127.0.0.1, port: 9, enabled: false}
"""


@pytest.fixture
def port() -> FakePort:
    """The engine with ``down`` failed and its incident open."""
    port = fake_port(CONFIG)
    port.check("down", Status.FAILED, "connection refused")
    return port


@pytest.fixture
async def client(port: FakePort) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(port) as c:
        yield c


async def test_post_ack_acknowledges_with_author_comment_and_expiry(
    port: FakePort, client: httpx.AsyncClient
) -> None:
    answer = await client.post(
        "/api/v1/services/down/ack",
        json={"author": "ann", "comment": "on it", "expires": "2h"},
    )
    assert answer.status_code == 200
    ack = answer.json()["incident"]["ack"]
    assert (ack["author"], ack["comment"]) == ("ann", "on it")
    assert (ack["at"], ack["expires"]) == (port.now(), port.now() + 7200)
    detail = (await client.get("/api/v1/services/down")).json()
    assert detail["acknowledged"] is True
    assert port.called("acknowledge") == [("down", "ann", "on it", port.now() + 7200)]
    assert port.incidents["down"].ack is not None
    assert (await port.events(1, "down"))[0].message == "acknowledged by ann: on it"


async def test_post_ack_without_a_body_uses_defaults(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/v1/services/down/ack")
    assert answer.status_code == 200
    assert answer.json()["incident"]["ack"]["author"] == "api"


async def test_delete_ack_takes_it_back(port: FakePort, client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/services/down/ack", json={"author": "ann"})
    answer = await client.delete("/api/v1/services/down/ack", params={"author": "bob"})
    assert answer.status_code == 200
    assert answer.json()["incident"]["ack"] is None
    assert port.called("unacknowledge") == [("down", "bob")]
    assert port.incidents["down"].ack is None


async def test_ack_of_an_unknown_service_is_404(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/v1/services/nope/ack")
    assert answer.status_code == 404
    assert "nope" in answer.json()["error"]


async def test_ack_without_an_open_incident_is_409(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/v1/services/we%20ird%20%3Cb%3E/ack")
    assert answer.status_code == 409
    assert "no open incident" in answer.json()["error"]


async def test_unack_of_what_is_not_acknowledged_is_409(client: httpx.AsyncClient) -> None:
    answer = await client.delete("/api/v1/services/down/ack")
    assert answer.status_code == 409
    assert "not acknowledged" in answer.json()["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"expires": "soon"}, "expires"),
        ({"author": ""}, "author"),
        ({"comment": "x" * 3000}, "comment"),
        ({"color": "red"}, "color"),
    ],
)
async def test_a_bad_field_is_named(
    client: httpx.AsyncClient, body: dict[str, str], field: str
) -> None:
    answer = await client.post("/api/v1/services/down/ack", json=body)
    assert answer.status_code == 422
    assert [f["field"] for f in answer.json()["fields"]] == [field]


async def test_an_ack_expiring_after_ten_years_is_refused(
    port: FakePort, client: httpx.AsyncClient
) -> None:
    answer = await client.post("/api/v1/services/down/ack", json={"expires": "99999999d"})
    assert answer.status_code == 422, answer.text
    [field] = answer.json()["fields"]
    assert field["field"] == "expires"
    assert TOO_LONG in field["error"]
    assert port.incidents["down"].ack is None


async def test_the_ack_form_refuses_an_expiry_after_ten_years(
    port: FakePort, client: httpx.AsyncClient
) -> None:
    html = (await client.get("/services/down")).text
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert csrf is not None
    headers = {"Accept": "application/json", "X-CSRF-Token": csrf[1]}
    form = {"expires": "99999999d"}
    answer = await client.post("/services/down/ack", data=form, headers=headers)
    assert answer.status_code == 422, answer.text
    assert TOO_LONG in answer.text
    assert port.incidents["down"].ack is None


async def test_notifications_lists_deliveries(client: httpx.AsyncClient) -> None:
    answer = (await client.get("/api/v1/notifications")).json()
    assert answer["deliveries"][0]["service"] == "down"
    assert answer["deliveries"][0]["channel"] == "log"
    assert set(answer["stats"]) == {"sent", "failed_attempts", "gave_up", "in_flight"}
    bad = await client.get("/api/v1/notifications", params={"state": "lost"})
    assert bad.status_code == 422
