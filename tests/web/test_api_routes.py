"""The API's routes on a fake engine port: names with / and markup, filters,
pagination, history ranges, run now, maintenance, reload, field errors, OpenAPI, and
no secrets in any output."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest
from argon2 import PasswordHasher

from pymon.model import ReloadResult, Status
from tests.support.port import SOME_TIME, FakePort, fake_port
from tests.web.helpers import app_client

XSS = "<script>alert(1)</script>"
SLASHED = "db/primary"
HISTORY_NAMED = "odd/history"
TOKEN_HASH = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("t0ken")
SECRETS = ("smtp-secret-pw", "hook-secret", TOKEN_HASH, "$argon2id$")
# The engine's clock is fake (tests/support/port.SOME_TIME, 20:26 UTC): the config's
# nightly window (03:00-04:00 UTC) is never active, whatever the real time of day.
CONFIG = f"""
web:
  auth: {{tokens: [{{name: ci, token_hash: "{TOKEN_HASH}"}}]}}
defaults: {{flap_guard: {{failed: 1}}}}
notifications:
  channels:
    mail: {{type: email, host: 127.0.0.1, port: 2525, username: u,
            password: smtp-secret-pw, from: p@example.org, to: [ops@example.org]}}
    hook: {{type: webhook, url: "http://127.0.0.1:9/", secret: hook-secret}}
maintenance:
  - {{name: Nightly Batch, services: [nightly], cron: "0 3 * * *", duration: 1h}}
services:
  - {{name: down, type: tcp, host: 127.0.0.1, port: 9, tags: [db, core]}}
  - {{name: "{SLASHED}", type: tcp, host: 127.0.0.1, port: 9, tags: [db]}}
  - {{name: "{XSS}", type: tcp, host: 127.0.0.1, port: 1, enabled: false}}
  - {{name: "{HISTORY_NAMED}", type: tcp, host: 127.0.0.1, port: 1, enabled: false}}
"""


@pytest.fixture
def port() -> FakePort:
    """The engine with ``down`` and ``db/primary`` failed (each with an open incident)."""
    port = fake_port(CONFIG)
    port.check("down", Status.FAILED, "connection refused")
    port.check(SLASHED, Status.FAILED, "connection refused")
    return port


@pytest.fixture
async def client(port: FakePort) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(port, headers={"Authorization": "Bearer t0ken"}) as c:
        yield c


def path(name: str) -> str:
    return f"/api/v1/services/{quote(name, safe='')}"


# -- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [SLASHED, XSS, HISTORY_NAMED])
async def test_any_name_reads_back(client: httpx.AsyncClient, name: str) -> None:
    answer = await client.get(path(name))
    assert answer.status_code == 200
    assert answer.json()["name"] == name
    assert answer.headers["content-type"] == "application/json"


async def test_a_name_with_a_slash_takes_the_suffix_routes(client: httpx.AsyncClient) -> None:
    unquoted = f"/api/v1/services/{SLASHED}"
    assert (await client.get(f"{unquoted}/history")).json()["service"] == SLASHED
    ack = await client.post(f"{unquoted}/ack", json={"comment": "x"})
    assert ack.status_code == 200 and ack.json()["service"] == SLASHED
    assert (await client.delete(f"{unquoted}/ack")).status_code == 200


async def test_unknown_service_is_404_on_every_route(client: httpx.AsyncClient) -> None:
    for method, suffix in [
        ("GET", ""),
        ("GET", "/history"),
        ("POST", "/ack"),
        ("DELETE", "/ack"),
        ("POST", "/run"),
    ]:
        answer = await client.request(method, path("nope/x") + suffix)
        assert answer.status_code == 404, (method, suffix)
        assert "nope/x" in answer.json()["error"]


# -- lists ---------------------------------------------------------------------------------


async def test_services_filter_by_tag_status_and_text(client: httpx.AsyncClient) -> None:
    def names(answer: httpx.Response) -> list[str]:
        return [s["name"] for s in answer.json()["services"]]

    assert names(await client.get("/api/v1/services", params={"tag": "db"})) == ["down", SLASHED]
    assert names(await client.get("/api/v1/services", params={"tag": "core"})) == ["down"]
    assert names(await client.get("/api/v1/services", params={"status": "disabled"})) == [
        XSS,
        HISTORY_NAMED,
    ]
    assert names(await client.get("/api/v1/services", params={"q": "PRIMARY"})) == [SLASHED]
    assert names(await client.get("/api/v1/services", params={"q": "<script"})) == [XSS]


async def test_services_paginate_with_a_total(client: httpx.AsyncClient) -> None:
    page = (await client.get("/api/v1/services", params={"limit": 1, "offset": 1})).json()
    assert page["total"] == 4
    assert [s["name"] for s in page["services"]] == [SLASHED]


async def test_events_paginate(client: httpx.AsyncClient) -> None:
    whole = (await client.get("/api/v1/events", params={"limit": 1000})).json()
    assert whole["next_offset"] is None and whole["total"] == len(whole["events"]) >= 4
    first = (await client.get("/api/v1/events", params={"limit": 2})).json()
    second = (await client.get("/api/v1/events", params={"limit": 2, "offset": 2})).json()
    assert first["total"] is None and first["next_offset"] == 2
    assert first["events"] + second["events"] == whole["events"][:4]


async def test_events_are_the_engines_events(port: FakePort, client: httpx.AsyncClient) -> None:
    shown = (await client.get("/api/v1/events", params={"service": "down"})).json()["events"]
    assert shown == [e.to_dict() for e in await port.events(100, "down")]
    assert [e["kind"] for e in shown][-1] == "changed"


async def test_notifications_paginate(client: httpx.AsyncClient) -> None:
    first = (await client.get("/api/v1/notifications", params={"limit": 1})).json()
    assert len(first["deliveries"]) == 1 and first["next_offset"] == 1


@pytest.mark.parametrize(
    ("route", "params", "field"),
    [
        ("/api/v1/services", {"status": "broken"}, "status"),
        ("/api/v1/services", {"limit": 0}, "limit"),
        ("/api/v1/services", {"offset": -1}, "offset"),
        ("/api/v1/events", {"limit": "many"}, "limit"),
        ("/api/v1/services/down/history", {"since": "yesterday-ish"}, "since"),
        ("/api/v1/services/down/history", {"since": "99999999d"}, "since"),
        ("/api/v1/services/down/history", {"until": "nan"}, "until"),
        ("/api/v1/services/down/history", {"points": 0}, "points"),
        ("/api/v1/services/down/history", {"since": "1h", "until": "2h"}, "until"),
        ("/api/v1/maintenance", {"active": "maybe"}, "active"),
    ],
)
async def test_a_bad_query_field_is_named(
    client: httpx.AsyncClient, route: str, params: dict[str, object], field: str
) -> None:
    answer = await client.get(route, params=params)  # type: ignore[arg-type]
    assert answer.status_code == 422
    assert [f["field"] for f in answer.json()["fields"]] == [field]


# -- history -------------------------------------------------------------------------------


async def test_history_range_and_points(port: FakePort, client: httpx.AsyncClient) -> None:
    for _ in range(6):
        await port.clock.advance(10)
        port.check("down", Status.FAILED, "connection refused")
    whole = (await client.get(path("down") + "/history", params={"limit": 1000})).json()
    assert whole["total"] == 7
    middle = whole["results"][len(whole["results"]) // 2]["started_at"]
    newer = (await client.get(path("down") + "/history", params={"since": middle})).json()
    assert all(r["started_at"] >= middle for r in newer["results"])
    assert newer["total"] == 4
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(middle + 1))
    older = (await client.get(path("down") + "/history", params={"until": iso})).json()
    assert all(r["started_at"] <= middle + 1 for r in older["results"])
    assert older["total"] == 4
    charted = (
        await client.get(path("down") + "/history", params={"points": 2, "since": "1h"})
    ).json()
    assert 1 <= len(charted["points"]) <= 2
    assert sum(p["count"] for p in charted["points"]) == charted["total"] == 7
    assert charted["points"][0]["status"] == "failed"


async def test_history_points_mark_the_point_after_a_hole(
    port: FakePort, client: httpx.AsyncClient
) -> None:
    # ``down`` is checked every 60 s (the default); pymon then stops for 50 minutes.
    for _ in range(3):
        await port.clock.advance(60)
        port.check("down", Status.FAILED, "connection refused")
    await port.clock.advance(50 * 60)
    for _ in range(3):
        port.check("down", Status.FAILED, "connection refused")
        await port.clock.advance(60)
    charted = (await client.get(path("down") + "/history", params={"points": 200})).json()
    assert [p["gap"] for p in charted["points"]] == [False] * 4 + [True, False, False]
    # Downsampled into buckets the hole still shows: 5 points over 55 minutes.
    coarse = (await client.get(path("down") + "/history", params={"points": 5})).json()
    assert [p["gap"] for p in coarse["points"]].count(True) == 1


# -- run now -------------------------------------------------------------------------------


async def test_run_now_is_202_and_asks_the_engine(
    port: FakePort, client: httpx.AsyncClient
) -> None:
    answer = await client.post(path("down") + "/run")
    assert answer.status_code == 202
    assert answer.json() == {"service": "down", "queued": True, "by": "ci"}
    assert port.called("run_now") == [("down",)]


async def test_run_now_of_a_disabled_service_is_409(client: httpx.AsyncClient) -> None:
    assert (await client.post(path(XSS) + "/run")).status_code == 409


async def test_run_now_needs_credentials(port: FakePort) -> None:
    async with app_client(port) as c:
        assert (await c.post(path("down") + "/run")).status_code == 401
    assert port.called("run_now") == []


# -- maintenance ---------------------------------------------------------------------------


async def test_maintenance_add_list_delete(port: FakePort, client: httpx.AsyncClient) -> None:
    added = await client.post(
        "/api/v1/maintenance", json={"services": [SLASHED], "duration": "2h", "comment": "disk"}
    )
    assert added.status_code == 201
    window = added.json()
    assert window["active"] is True and window["source"] == "api" and window["author"] == "ci"
    assert port.states[SLASHED].maintenance
    listed = (await client.get("/api/v1/maintenance")).json()
    assert listed["total"] == 2
    assert [w["source"] for w in listed["windows"]] == ["config", "api"]
    assert listed["windows"][0]["active"] is False  # 03:00-04:00 UTC; the clock says 20:26
    assert [w["id"] for w in listed["windows"]] == ["nightly-batch", window["id"]]
    active = (await client.get("/api/v1/maintenance", params={"active": True})).json()
    assert [w["id"] for w in active["windows"]] == [window["id"]]
    gone = await client.delete(f"/api/v1/maintenance/{window['id']}")
    assert gone.status_code == 200
    assert (await client.delete(f"/api/v1/maintenance/{window['id']}")).status_code == 404
    assert (await client.get("/api/v1/maintenance")).json()["total"] == 1


async def test_a_config_window_has_an_id_but_is_not_deleted_through_the_api(
    client: httpx.AsyncClient,
) -> None:
    (window,) = (await client.get("/api/v1/maintenance")).json()["windows"]
    assert window["source"] == "config" and window["id"] == "nightly-batch"
    answer = await client.delete("/api/v1/maintenance/nightly-batch")
    assert answer.status_code == 409
    assert "defined in the config" in answer.json()["error"]
    assert (await client.get("/api/v1/maintenance")).json()["windows"] == [window]


async def test_maintenance_with_start_and_end(client: httpx.AsyncClient) -> None:
    start = datetime.fromtimestamp(SOME_TIME, UTC) + timedelta(days=30)
    answer = await client.post(
        "/api/v1/maintenance",
        json={
            "tags": ["db"],
            "start": start.isoformat(),
            "end": (start + timedelta(days=1)).isoformat(),
        },
    )
    assert answer.status_code == 201
    assert answer.json()["active"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"duration": "2h"}, "services"),
        ({"services": ["x"]}, "end"),
        ({"services": ["x"], "duration": "2h", "end": "2030-01-01T00:00"}, "duration"),
        ({"services": ["x"], "duration": "soon"}, "duration"),
        ({"services": ["x"], "duration": "-1h"}, "duration"),
        ({"services": ["x"], "start": "2030-01-02", "end": "2030-01-01"}, "end"),
        ({"services": ["x"], "duration": "1h", "timezone": "Mars/Olympus"}, "timezone"),
        ({"services": ["x"], "duration": "1h", "colour": "red"}, "colour"),
        ({"services": ["x"], "duration": "1h", "comment": "x" * 3000}, "comment"),
        ({"services": ["x"], "duration": "367d"}, "duration"),
        ({"services": ["x"], "start": "2030-01-01T00:00", "end": "2031-01-03T00:00"}, "end"),
    ],
)
async def test_bad_maintenance_fields_are_named(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    answer = await client.post("/api/v1/maintenance", json=body)
    assert answer.status_code == 422, answer.text
    assert [f["field"] for f in answer.json()["fields"]] == [field]


async def test_maintenance_may_last_366_days_and_no_longer(
    port: FakePort, client: httpx.AsyncClient
) -> None:
    longest = await client.post("/api/v1/maintenance", json={"tags": ["db"], "duration": "366d"})
    assert longest.status_code == 201, longest.text
    spanned = {"tags": ["db"], "start": "2030-01-01T00:00Z", "end": "2031-01-02T00:00Z"}
    assert (await client.post("/api/v1/maintenance", json=spanned)).status_code == 201
    longer = await client.post("/api/v1/maintenance", json={"tags": ["db"], "duration": "366d1s"})
    assert longer.status_code == 422
    assert longer.json()["fields"] == [{"field": "duration", "error": "must be at most 366 days"}]
    assert len(port.called("add_maintenance")) == 2


async def test_a_maintenance_window_reaches_the_engine_as_asked(
    port: FakePort, client: httpx.AsyncClient
) -> None:
    body = {"services": ["db*"], "start": "2030-03-31T01:30", "duration": "2h"}
    answer = await client.post("/api/v1/maintenance", json={**body, "timezone": "Europe/Berlin"})
    assert answer.status_code == 201
    ((window,),) = port.called("add_maintenance")
    assert (window.author, window.services, window.timezone) == ("ci", ("db*",), "Europe/Berlin")
    assert window.start is not None and window.end is not None
    # Two hours of real time, across the night Berlin's clocks skip 02:00 to 03:00.
    assert window.end.timestamp() - window.start.timestamp() == 7200
    assert window.end.isoformat() == "2030-03-31T04:30:00+02:00"


async def test_maintenance_writes_need_credentials(port: FakePort) -> None:
    async with app_client(port) as c:
        answer = await c.post("/api/v1/maintenance", json={"services": ["x"], "duration": "1h"})
        assert answer.status_code == 401
        assert (await c.delete("/api/v1/maintenance/abc")).status_code == 401


# -- heartbeat and reload --------------------------------------------------------------------


async def test_a_heartbeat_push_names_its_service() -> None:
    port = fake_port(
        "services: [{name: job, type: heartbeat, token: job-token-0123456789, grace: 1h}]"
    )
    async with app_client(port) as c:
        pushed = await c.post(
            "/api/v1/heartbeat/job-token-0123456789", params={"status": "fail", "msg": "x"}
        )
        polled = await c.get("/api/v1/heartbeat/job-token-0123456789")
        unknown = await c.get("/api/v1/heartbeat/nope")
    assert pushed.json() == {"service": "job", "status": "fail"}
    assert polled.json() == {"service": "job", "status": "ok"}
    assert unknown.status_code == 404
    assert port.called("push_heartbeat") == [
        ("job-token-0123456789", False, "x"),
        ("job-token-0123456789", True, ""),
        ("nope", True, ""),
    ]


async def test_reload_answers_what_the_engine_did(
    port: FakePort, client: httpx.AsyncClient
) -> None:
    applied = await client.post("/api/v1/reload")
    assert applied.status_code == 200 and applied.json()["ok"] is True
    port.reload_result = ReloadResult(False, "api (ci)", port.now(), errors=("x.yaml:3: bad",))
    refused = await client.post("/api/v1/reload")
    assert refused.status_code == 422
    assert refused.json() == port.reload_result.to_dict()
    assert port.called("reload") == [("api (ci)",), ("api (ci)",)]
    health = (await client.get("/healthz")).json()
    assert health["reload"] == {
        "ok": False,
        "at": port.now(),
        "error": "x.yaml:3: bad",
        "source": "api (ci)",
    }


# -- OpenAPI and secrets --------------------------------------------------------------------


async def test_openapi_lists_every_route(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/api/v1/openapi.json")).json()
    paths = doc["paths"]
    assert {
        "/api/v1/services",
        "/api/v1/services/{name}",
        "/api/v1/services/{name}/history",
        "/api/v1/services/{name}/ack",
        "/api/v1/services/{name}/run",
        "/api/v1/events",
        "/api/v1/maintenance",
        "/api/v1/maintenance/{window_id}",
        "/api/v1/notifications",
        "/api/v1/nodes",
        "/api/v1/heartbeat/{token}",
        "/healthz",
        "/metrics",
    } <= set(paths)
    assert set(paths["/api/v1/services/{name}/ack"]) == {"post", "delete"}
    assert set(paths["/api/v1/maintenance"]) == {"get", "post"}


async def test_no_secret_in_any_get_route(client: httpx.AsyncClient) -> None:
    routes = [
        "/api/v1/services",
        path("down"),
        path(SLASHED) + "/history",
        "/api/v1/events",
        "/api/v1/notifications",
        "/api/v1/maintenance",
        "/healthz",
        "/metrics",
        "/api/v1/openapi.json",
    ]
    for route in routes:
        answer = await client.get(route)
        assert answer.status_code == 200, route
        text = answer.text if route == "/metrics" else json.dumps(answer.json())
        for secret in SECRETS:
            assert secret not in text, (route, secret)
