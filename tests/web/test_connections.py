"""The web server's connection limits, with real sockets against a real server on
127.0.0.1 (the app on a fake port): a client that never finishes its headers, or
sends nothing, is closed; one address cannot hold more than its share, nor all
addresses together more than the total; and ``/healthz`` answers all the while.

Attackers connect from other loopback addresses (127.0.0.2, ...), so that the
per-address cap they meet is not the one of the health check (127.0.0.1).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest

from pymon.config.load import load_config_text
from pymon.config.web import WebConnections
from pymon.engine.reconcile import live_config, restart_needed
from pymon.errors import ConfigError
from pymon.web.app import create_app
from pymon.web.server import WebServer
from tests.support.port import fake_port
from tests.support.waiting import wait_for

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]
ServerOf = Callable[..., Any]
# Long enough that no limit under test acts on its own while a test looks.
PATIENT = 300.0


@asynccontextmanager
async def serving(**limits: Any) -> AsyncIterator[tuple[WebServer, int]]:
    trusted = limits.pop("trusted_proxies", ())
    server = WebServer(
        create_app(fake_port()),
        "127.0.0.1",
        0,
        limits=WebConnections(**({"header_timeout": PATIENT} | limits)),
        trusted_proxies=trusted,
    )
    port = await server.start()
    try:
        yield server, port
    finally:
        await server.stop()


async def connect(port: int, source: str = "127.0.0.2") -> Conn:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def answer_to_nothing(conn: Conn) -> bytes:
    """What the server says before it closes ``conn`` (b"" when it closes in silence)."""
    reader, writer = conn
    async with asyncio.timeout(15):
        data = await reader.read()
    writer.close()
    return data


async def healthy(port: int) -> bool:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        answer = await client.get("/healthz")
    return answer.status_code == 200 and answer.json()["status"] == "ok"


async def test_a_request_whose_headers_never_end_is_closed_with_a_408() -> None:
    async with serving(header_timeout=0.3) as (server, port):
        conn = await connect(port)
        conn[1].write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        said = await answer_to_nothing(conn)
        assert said.startswith(b"HTTP/1.1 408 ")
        assert b"headers came too slowly" in said
        await wait_for(lambda: server.connections == 0)


async def test_headers_dripped_byte_by_byte_do_not_keep_a_connection() -> None:
    async with serving(header_timeout=0.5) as (_, port):
        reader, writer = await connect(port)

        async def drip() -> None:
            # The attack itself: a byte now and then, never the blank line.
            for byte in b"GET /healthz HTTP/1.1\r\n" + b"X-a: b\r\n" * 1000:
                writer.write(bytes([byte]))
                await asyncio.sleep(0.01)

        dripping = asyncio.create_task(drip())
        try:
            said = await answer_to_nothing((reader, writer))
        finally:
            dripping.cancel()
        assert said.startswith(b"HTTP/1.1 408 ")


async def test_a_connection_that_sends_nothing_is_closed() -> None:
    async with serving(header_timeout=0.3) as (server, port):
        conns = [await connect(port) for _ in range(20)]
        assert [await answer_to_nothing(c) for c in conns] == [b""] * 20
        await wait_for(lambda: server.connections == 0)


async def test_a_kept_alive_connection_that_starts_slowly_again_is_closed() -> None:
    async with serving(header_timeout=0.3, idle_timeout=PATIENT) as (_, port):
        reader, writer = await connect(port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(15):
            head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        length = int(next(h for h in head.split(b"\r\n") if h.startswith(b"content-length"))[15:])
        await reader.readexactly(length)
        writer.write(b"GET /healthz HTTP/1.1\r\nHo")
        assert (await answer_to_nothing((reader, writer))).startswith(b"HTTP/1.1 408 ")


async def test_one_address_gets_no_more_than_its_share_and_healthz_still_answers() -> None:
    async with serving(max_per_address=5) as (server, port), AsyncExitStack() as held:
        conns = [await connect(port) for _ in range(5)]
        for _, writer in conns:
            held.callback(writer.close)
        await wait_for(lambda: server.connections == 5)
        said = await answer_to_nothing(await connect(port))
        assert said.startswith(b"HTTP/1.1 503 ")
        assert b"too many connections from this address" in said
        assert await healthy(port)  # from 127.0.0.1: its own share
        another = await connect(port, source="127.0.0.3")
        held.callback(another[1].close)
        await wait_for(lambda: server.connections == 6)


async def test_all_addresses_together_get_no_more_than_the_total() -> None:
    async with serving(max_total=6, max_per_address=4) as (server, port):
        conns = [await connect(port, "127.0.0.2") for _ in range(4)]
        conns += [await connect(port, "127.0.0.3") for _ in range(2)]
        await wait_for(lambda: server.connections == 6)
        said = await answer_to_nothing(await connect(port, "127.0.0.4"))
        assert said.startswith(b"HTTP/1.1 503 ") and b'"too many connections"' in said
        for _, writer in conns:
            writer.close()
        await wait_for(lambda: server.connections == 0)
        assert await healthy(port)  # room again once they are gone


async def test_a_trusted_proxy_is_not_capped_per_address() -> None:
    limits = {"max_per_address": 2, "trusted_proxies": ["127.0.0.2"]}
    async with serving(**limits) as (server, port):
        conns = [await connect(port, "127.0.0.2") for _ in range(5)]
        await wait_for(lambda: server.connections == 5)
        for _, writer in conns:
            writer.close()


async def test_a_flood_of_slow_and_idle_connections_passes_and_healthz_answers() -> None:
    async with serving(header_timeout=1, max_per_address=100) as (server, port):
        slow = [await connect(port, "127.0.0.2") for _ in range(150)]
        idle = [await connect(port, "127.0.0.3") for _ in range(150)]
        for _, writer in slow:
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
        assert await healthy(port)
        answers = await asyncio.gather(*(answer_to_nothing(c) for c in slow + idle))
        refused = [a for a in answers if a.startswith(b"HTTP/1.1 503 ")]
        assert len(refused) == 100  # 50 beyond the share of each address
        assert {a[:13] for a in answers[:150] if a not in refused} == {b"HTTP/1.1 408 "}
        assert {a for a in answers[150:] if a not in refused} == {b""}
        await wait_for(lambda: server.connections == 0)
        assert await healthy(port)


def test_the_limits_are_config_with_bounds() -> None:
    config = load_config_text(
        "web: {connections: {header_timeout: 2s, max_total: 50, max_per_address: 10}}"
    )
    assert config.web.connections == WebConnections(
        header_timeout=2.0, max_total=50, max_per_address=10
    )
    with pytest.raises(ConfigError, match=r"web\.connections\.max_per_address"):
        load_config_text("web: {connections: {max_per_address: 0}}")


def test_changed_limits_wait_for_a_restart() -> None:
    old = load_config_text("web: {connections: {max_total: 50}}")
    new = load_config_text("web: {connections: {max_total: 60}}")
    assert restart_needed(old, new) == [
        "web.connections changed: needs a restart (the running value is kept)"
    ]
    assert live_config(old, new).web.connections.max_total == 50


async def test_a_long_answer_is_not_cut_by_the_header_deadline() -> None:
    async with serving(header_timeout=0.3) as (server, port):
        reader, writer = await connect(port)
        writer.write(b"GET /api/v1/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(15):
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200 ")
        # A connection opened after the stream's headers were in, closed for being
        # late: the stream's own deadline (had it kept one) has passed as well.
        assert await answer_to_nothing(await connect(port)) == b""
        await wait_for(lambda: server.connections == 1)
        assert not reader.at_eof()
        writer.close()
