"""GET /api/v1/reports/uptime on the fake port: JSON and CSV, the filters, the window,
and a 422 naming the field for each bad parameter."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from pymon.uptime import DAY, HOUR
from tests.support.port import FakePort
from tests.web.helpers import app_client
from tests.web.reports_data import CONFIG, MIDNIGHT, NOW, seeded_port

URL = "/api/v1/reports/uptime"
# Two whole days before today: every figure is exact.
WINDOW = {"since": str(MIDNIGHT - 2 * DAY), "until": str(MIDNIGHT)}


@pytest.fixture
def port() -> FakePort:
    return seeded_port()


async def report(port: FakePort, **params: Any) -> httpx.Response:
    async with app_client(port) as client:
        return await client.get(URL, params=params)


def rows(answer: httpx.Response) -> dict[str, dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    return {row["service"]: row for row in answer.json()["services"]}


async def test_the_report_by_default_covers_the_last_30_days(port: FakePort) -> None:
    answer = await report(port)
    body = answer.json()
    assert (body["since"], body["until"]) == (NOW - 30 * DAY, NOW)
    assert [row["service"] for row in body["services"]] == ["web", "api", "db"]
    api = body["services"][1]
    assert api["uptime_pct"] == pytest.approx(100 * 23 / 24, abs=0.01)
    assert (api["sla"], api["sla_status"]) == (99.9, "missed")
    # One incident a day, each an hour long, 30 of them in the window.
    assert api["incidents"] == 30
    assert api["mttr_minutes"] == pytest.approx(60)
    assert api["longest_incident_minutes"] == pytest.approx(60)


async def test_the_figures_of_a_window(port: FakePort) -> None:
    found = rows(await report(port, **WINDOW))
    assert found["web"]["uptime_pct"] == pytest.approx(100.0)
    assert found["web"]["sla_status"] == "no_target"
    assert found["api"]["downtime_minutes"] == pytest.approx(120)
    assert found["api"]["incidents"] == 2
    assert found["api"]["mtbf_minutes"] == pytest.approx(23 * 60)
    assert found["db"]["uptime_pct"] == pytest.approx(100.0)
    assert found["db"]["maintenance_minutes"] == pytest.approx(120)
    assert (found["db"]["sla_status"], found["db"]["no_data_minutes"]) == ("met", 0)
    assert found["db"]["checks"] == 2 * 24 * 60


async def test_maintenance_counts_when_asked(port: FakePort) -> None:
    found = rows(await report(port, include_maintenance="true", **WINDOW))
    assert found["db"]["uptime_pct"] == pytest.approx(100 * 23 / 24)
    assert (found["db"]["downtime_minutes"], found["db"]["sla_status"]) == (120, "missed")


async def test_a_duration_and_an_iso_date_are_moments(port: FakePort) -> None:
    body = (await report(port, since="48h", until="2026-05-27T12:00:00Z")).json()
    assert body["since"] == NOW - 2 * DAY
    assert body["until"] == MIDNIGHT - 12 * HOUR
    # A bare date as until means the end of that day.
    body = (await report(port, since="2026-05-26", until="2026-05-27")).json()
    assert (body["since"], body["until"]) == (MIDNIGHT - 2 * DAY, MIDNIGHT)
    # Never past now: the future holds no data to count.
    assert (await report(port, until="2099-01-01")).json()["until"] == NOW


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"tag": "web"}, ["web", "api"]),
        ({"tag": "public"}, ["web"]),
        ({"service": "db"}, ["db"]),
        ({"service": ["db", "web"]}, ["web", "db"]),
        ({"service": "db", "tag": "public"}, ["web", "db"]),
        ({"tag": "nothing-has-this"}, []),
    ],
)
async def test_services_and_tags_pick_the_services(
    port: FakePort, params: dict[str, Any], names: list[str]
) -> None:
    answer = await report(port, **params)
    assert [row["service"] for row in answer.json()["services"]] == names


async def test_the_csv_has_a_header_and_a_row_per_service(port: FakePort) -> None:
    answer = await report(port, format="csv", tag="web", **WINDOW)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"] == (
        'attachment; filename="pymon-uptime-20260526-20260528.csv"'
    )
    table = list(csv.DictReader(io.StringIO(answer.text)))
    assert table[0].keys() >= {"service", "uptime_pct", "sla", "sla_status", "tags"}
    assert [(r["service"], r["sla_status"]) for r in table] == [
        ("web", "no_target"),
        ("api", "missed"),
    ]
    api = table[1]
    assert float(api["uptime_pct"]) == pytest.approx(100 * 23 / 24, abs=1e-6)
    assert (api["sla"], api["tags"], api["downtime_minutes"]) == ("99.9", "web", "120")
    # A value that does not exist is an empty cell (web has no incident to average).
    assert table[0]["mttr_minutes"] == ""


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "nan"}, "until"),
        ({"since": "1h", "until": "2h"}, "until"),
        ({"since": "401d"}, "since"),
        ({"since": "0"}, "since"),
        ({"service": "nope"}, "service"),
        ({"service": ["x"] * 1001}, "service"),
        ({"tag": "t" * 201}, "tag"),
        ({"format": "xml"}, "format"),
        ({"include_maintenance": "perhaps"}, "include_maintenance"),
    ],
)
async def test_a_bad_parameter_is_a_422_naming_it(
    port: FakePort, params: dict[str, Any], field: str
) -> None:
    answer = await report(port, **params)
    assert answer.status_code == 422, answer.text
    assert [f["field"] for f in answer.json()["fields"]] == [field]


async def test_the_report_is_a_read_behind_read_auth() -> None:
    token_hash = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("t0ken")
    web = f'web: {{auth: {{read: true, tokens: [{{name: ci, token_hash: "{token_hash}"}}]}}}}\n'
    port = seeded_port(web + CONFIG)
    async with app_client(port) as anonymous:
        assert (await anonymous.get(URL)).status_code == 401
    async with app_client(port, headers={"Authorization": "Bearer t0ken"}) as reader:
        assert (await reader.get(URL)).status_code == 200
