"""Badges on a fake engine port: SVG that parses, the right colours and figures, the
same 404 for a private service as for none, and cache headers."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from pymon.model import Status
from pymon.uptime import DAY, HOUR, bin_of, bucket_start
from pymon.web.public.badges import response_colour, uptime_colour
from pymon.web.public.shields import COLOURS, MAX_TEXT, badge, text_width
from tests.support.port import SOME_TIME, FakePort, fake_port
from tests.web.helpers import app_client
from tests.web.status_helpers import TODAY, bucket, page_config

SVG = "{http://www.w3.org/2000/svg}"
THIS_HOUR = bucket_start(SOME_TIME, HOUR)


def parsed(body: bytes) -> tuple[list[str], str]:
    """The texts a badge shows (each once: the shadow copies dropped) and its value's fill."""
    root = ET.fromstring(body)
    assert root.tag == f"{SVG}svg"
    texts = [t.text or "" for t in root.iter(f"{SVG}text")][1::2]
    rects = list(root.iter(f"{SVG}rect"))
    return texts, rects[2].attrib["fill"]


async def get(port: FakePort, path: str, status: int = 200) -> tuple[list[str], str]:
    async with app_client(port) as client:
        answer = await client.get(path)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "image/svg+xml"
    assert answer.headers["cache-control"] == "public, max-age=60"
    return parsed(answer.content)


@pytest.mark.parametrize(
    ("status", "value", "colour"),
    [
        (Status.OK, "operational", "brightgreen"),
        (Status.WARN, "degraded performance", "yellow"),
        (Status.ERROR, "partial outage", "orange"),
        (Status.FAILED, "major outage", "red"),
        (Status.UNKNOWN, "no data", "grey"),
    ],
)
async def test_the_status_badge_says_the_state_in_its_colour(
    status: Status, value: str, colour: str
) -> None:
    port = fake_port(page_config())
    port.set_status("web-ok", status)
    assert await get(port, "/badge/web-ok/status.svg") == (["Website", value], COLOURS[colour])


async def test_a_service_in_maintenance_is_blue() -> None:
    port = fake_port(page_config())
    port.set_status("api-1", Status.FAILED, maintenance=True)
    # api-1 is on the page through the tags of the component API: labelled so.
    assert await get(port, "/badge/api-1/status.svg") == (
        ["API", "under maintenance"],
        COLOURS["blue"],
    )


async def test_the_uptime_badge_reads_the_window_asked_for() -> None:
    port = fake_port(page_config())
    port.buckets += [
        bucket("web-ok", TODAY - 10 * DAY, {"ok": 86400 - 864, "failed": 864}),  # 99 %
        bucket("web-ok", TODAY - 40 * DAY, {"failed": 86400}),
        bucket("web-ok", THIS_HOUR, {"ok": 1000}, width=HOUR),
        bucket("web-ok", THIS_HOUR - 30 * HOUR, {"failed": 3600}, width=HOUR),
    ]
    # window asked -> value and colour; the 7 days read hours: 1,000 s up, 3,600 s down
    expected = {
        "?window=30d": ("Website uptime 30d", "99 %", "green"),
        "": ("Website uptime 30d", "99 %", "green"),
        "?window=90d": ("Website uptime 90d", "49.5 %", "red"),
        "?window=1y": ("Website uptime 1y", "49.5 %", "red"),
        "?window=24h": ("Website uptime 24h", "100 %", "brightgreen"),
        "?window=7d": ("Website uptime 7d", "21.74 %", "red"),
    }
    for query, (label, value, colour) in expected.items():
        assert await get(port, f"/badge/web-ok/uptime.svg{query}") == (
            [label, value],
            COLOURS[colour],
        ), query
    assert await get(port, "/badge/api-1/uptime.svg?window=30d") == (
        ["API uptime 30d", "no data"],
        COLOURS["grey"],
    )


async def test_a_window_outside_the_list_is_refused_with_the_field_named() -> None:
    port = fake_port(page_config())
    async with app_client(port) as client:
        answer = await client.get("/badge/web-ok/uptime.svg?window=2d")
    assert answer.status_code == 422
    assert answer.json()["fields"][0]["field"] == "window"


async def test_the_response_badge_shows_the_p95_in_ms() -> None:
    port = fake_port(page_config())
    fast, slow = bin_of(0.050), bin_of(0.900)
    port.buckets.append(
        bucket("web-ok", THIS_HOUR, {"ok": 3600}, width=HOUR, durations={fast: 90, slow: 10})
    )
    texts, fill = await get(port, "/badge/web-ok/response.svg?window=24h")
    assert texts[0] == "Website p95 24h"
    assert 900 <= int(texts[1].removesuffix(" ms")) < 1000
    assert fill == COLOURS["yellow"]
    port.buckets[-1] = bucket("web-ok", THIS_HOUR, {"ok": 3600}, width=HOUR, durations={fast: 100})
    texts, fill = await get(port, "/badge/web-ok/response.svg")
    assert 50 <= int(texts[1].removesuffix(" ms")) < 56
    assert fill == COLOURS["brightgreen"]


async def test_a_private_service_answers_exactly_as_no_service() -> None:
    port = fake_port(page_config())
    port.set_status("private", Status.FAILED)
    async with app_client(port) as client:
        for kind in ("status.svg", "uptime.svg?window=30d", "response.svg"):
            private = await client.get(f"/badge/private/{kind}")
            unknown = await client.get(f"/badge/nobody/{kind}")
            assert private.status_code == unknown.status_code == 404
            assert private.content == unknown.content
            assert dict(private.headers) == dict(unknown.headers)


async def test_badge_true_serves_a_service_on_no_page_under_its_own_name() -> None:
    port = fake_port(
        page_config(
            services="  - {name: shown/db, type: tcp, host: 127.0.0.1, port: 84, badge: true}"
        )
    )
    port.set_status("shown/db", Status.OK)
    assert await get(port, "/badge/shown/db/status.svg") == (
        ["shown/db", "operational"],
        COLOURS["brightgreen"],
    )
    assert (await get(port, "/badge/shown%2Fdb/status.svg"))[0] == ["shown/db", "operational"]


async def test_every_text_is_escaped() -> None:
    hostile = '<b>&"API"</b>'
    port = fake_port(page_config().replace("{name: API,", "{name: '" + hostile + "',"))
    texts, _ = await get(port, "/badge/api-2/status.svg")
    assert texts[0] == hostile
    root = ET.fromstring(badge(hostile, "x" * 500, "red"))
    assert root.find(f"{SVG}title") is not None
    shown = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert len(shown[2]) == MAX_TEXT and shown[2].endswith("…")


def test_text_widths_come_from_the_table() -> None:
    assert text_width("") == 0
    assert text_width("iii") < text_width("mmm")
    assert text_width("W") > text_width("l")
    assert text_width("界") > text_width("a")
    narrow = ET.fromstring(badge("a", "ok", "red")).attrib["width"]
    wide = ET.fromstring(badge("a much longer label", "ok", "red")).attrib["width"]
    assert int(narrow) < int(wide)


@pytest.mark.parametrize(
    ("figure", "colour"),
    [
        (uptime_colour(None), "grey"),
        (uptime_colour(100.0), "brightgreen"),
        (uptime_colour(99.9), "brightgreen"),
        (uptime_colour(99.5), "green"),
        (uptime_colour(98.5), "yellowgreen"),
        (uptime_colour(97.5), "yellow"),
        (uptime_colour(96.0), "orange"),
        (uptime_colour(80.0), "red"),
        (response_colour(None), "grey"),
        (response_colour(150), "brightgreen"),
        (response_colour(300), "green"),
        (response_colour(800), "yellow"),
        (response_colour(1500), "orange"),
        (response_colour(3000), "red"),
    ],
)
def test_colours_by_threshold(figure: str, colour: str) -> None:
    assert figure == colour


async def test_uptime_just_under_100_is_never_shown_as_100() -> None:
    port = fake_port(page_config())
    port.buckets.append(bucket("web-ok", TODAY - DAY, {"ok": 86400 * 30, "failed": 1}))
    texts, fill = await get(port, "/badge/web-ok/uptime.svg?window=30d")
    assert (texts[1], fill) == ("99.99 %", COLOURS["brightgreen"])
