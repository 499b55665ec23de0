"""Forwarded headers: believed from trusted proxies only; prefixes and public URLs."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import Request

from pymon.web.app import create_app
from pymon.web.proxy import forwarded_client, is_trusted, public_base_url, public_prefix
from tests.support.port import fake_port

Probe = Callable[..., httpx.AsyncClient]


@pytest.fixture
def probe() -> Probe:
    """A client of an in-process app with a route echoing what the proxy layer decided."""

    def make(peer: str, *, trusted: str = "[]", base_path: str = "") -> httpx.AsyncClient:
        port = fake_port(f'web: {{base_path: "{base_path}", trusted_proxies: {trusted}}}')
        app = create_app(port)

        @app.get(f"{base_path}/probe")
        async def echo(request: Request) -> dict[str, object]:
            return {
                "prefix": public_prefix(request),
                "base": public_base_url(request),
                "client": request.client.host if request.client else None,
            }

        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080")

    return make


FORWARDED = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "mon.example.org",
    "X-Forwarded-Prefix": "/monitoring/",
    "X-Forwarded-For": "198.51.100.9",
}


async def test_headers_from_a_trusted_proxy_are_honoured(probe: Probe) -> None:
    async with probe("10.1.2.3", trusted='["10.0.0.0/8"]') as c:
        seen = (await c.get("/probe", headers=FORWARDED)).json()
    assert seen == {
        "prefix": "/monitoring",
        "base": "https://mon.example.org/monitoring",
        "client": "198.51.100.9",
    }


async def test_spoofed_headers_from_an_untrusted_peer_are_ignored(probe: Probe) -> None:
    async with probe("192.0.2.66", trusted='["10.0.0.0/8"]') as c:
        seen = (await c.get("/probe", headers=FORWARDED)).json()
    assert seen == {"prefix": "", "base": "http://127.0.0.1:8080", "client": "192.0.2.66"}


async def test_nobody_is_trusted_by_default(probe: Probe) -> None:
    async with probe("127.0.0.1") as c:
        seen = (await c.get("/probe", headers=FORWARDED)).json()
    assert seen["prefix"] == "" and seen["client"] == "127.0.0.1"


async def test_a_trusted_proxys_x_real_ip_names_the_client(probe: Probe) -> None:
    async with probe("10.1.2.3", trusted='["10.0.0.0/8"]') as c:
        alone = (await c.get("/probe", headers={"X-Real-IP": "198.51.100.9"})).json()
        both = {"X-Real-IP": "198.51.100.9", "X-Forwarded-For": "203.0.113.5"}
        beside = (await c.get("/probe", headers=both)).json()
    async with probe("192.0.2.66", trusted='["10.0.0.0/8"]') as c:
        spoofed = (await c.get("/probe", headers={"X-Real-IP": "198.51.100.9"})).json()
    # X-Forwarded-For, when present, is the chain every proxy appends to: it wins.
    assert (alone["client"], beside["client"]) == ("198.51.100.9", "203.0.113.5")
    assert spoofed["client"] == "192.0.2.66"


async def test_forwarded_prefix_comes_before_base_path(probe: Probe) -> None:
    async with probe("::1", trusted='["::1"]', base_path="/pymon") as c:
        seen = (await c.get("/pymon/probe", headers={"X-Forwarded-Prefix": "/ops"})).json()
    assert seen["prefix"] == "/ops/pymon"
    assert seen["base"] == "http://127.0.0.1:8080/ops/pymon"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Forwarded-Prefix", "javascript:alert(1)"),
        ("X-Forwarded-Prefix", "/a b"),
        ("X-Forwarded-Prefix", "//evil.example"),
        ("X-Forwarded-Host", "evil.example/path"),
        ("X-Forwarded-Host", "a b"),
        ("X-Forwarded-Proto", "gopher"),
    ],
)
async def test_malformed_forwarded_values_are_ignored(
    probe: Probe, header: str, value: str
) -> None:
    async with probe("10.0.0.1", trusted='["10.0.0.1"]') as c:
        seen = (await c.get("/probe", headers={header: value})).json()
    assert seen["base"] == "http://127.0.0.1:8080"


async def test_base_path_serves_the_api_under_the_prefix(probe: Probe) -> None:
    async with probe("127.0.0.1", base_path="/mon") as c:
        assert (await c.get("/mon/api/v1/services")).status_code == 200
        assert (await c.get("/mon/healthz")).status_code == 200
        assert (await c.get("/mon/metrics")).status_code == 200
        assert (await c.get("/api/v1/services")).status_code == 404


@pytest.mark.parametrize(
    ("chain", "client"),
    [
        ("198.51.100.9", "198.51.100.9"),
        ("6.6.6.6, 198.51.100.9, 10.0.0.2", "198.51.100.9"),  # the spoofed left end is skipped
        ("10.0.0.3, 10.0.0.2", "10.0.0.3"),
        ("not-an-ip", None),
        ("", None),
    ],
)
def test_forwarded_client_is_the_rightmost_untrusted_hop(chain: str, client: str | None) -> None:
    assert forwarded_client(chain, ["10.0.0.0/8"]) == client


@pytest.mark.parametrize(
    ("address", "trusted"),
    [
        ("10.9.9.9", True),
        ("::ffff:10.0.0.1", True),
        ("11.0.0.1", False),
        ("junk", False),
        ("::1", False),
    ],
)
def test_is_trusted(address: str, trusted: bool) -> None:
    assert is_trusted(address, ["10.0.0.0/8"]) is trusted
