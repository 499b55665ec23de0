"""The tcp check against real listeners on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Iterator

import pytest

from pymon.checks import tcp
from pymon.checks.tcp import unescape
from pymon.model import Status
from tests.checks.targets import FakeResolver, RawServer, RunCheck, until_eof
from tests.support.servers import free_port


async def _greeter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer ``HELLO`` with a banner, anything else with ``BYE``; then wait for the client."""
    line = await reader.readline()
    writer.write(b"200 welcome to pymon\r\n" if line == b"HELLO\r\n" else b"BYE\r\n")
    await writer.drain()
    await reader.read()


async def test_open_port_is_ok_with_connect_time(check: RunCheck, raw_server: RawServer) -> None:
    async with raw_server(until_eof) as port:
        result = await check("tcp", {"host": "127.0.0.1", "port": port})
    assert result.status is Status.OK, result.message
    assert f"connected to 127.0.0.1 port {port}" in result.message
    assert result.metrics["connect_ms"] >= 0


async def test_plain_connect_closes_its_connection(check: RunCheck, raw_server: RawServer) -> None:
    # Without send/expect the check uses a bare socket: the server must still see
    # the connection end, at once, and nothing sent on it.
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await received.put(await reader.read())

    async with raw_server(record) as port:
        for _ in range(3):
            result = await check("tcp", {"host": "127.0.0.1", "port": port})
            assert result.status is Status.OK, result.message
            assert await asyncio.wait_for(received.get(), 5) == b""


async def test_closed_port_is_refused(check: RunCheck) -> None:
    result = await check("tcp", {"host": "127.0.0.1", "port": free_port()})
    assert result.status is Status.FAILED
    assert "connection refused" in result.message
    assert not result.metrics


async def test_ipv6_literal_connects(check: RunCheck) -> None:
    with socket.create_server(("::1", 0), family=socket.AF_INET6) as server:
        port = server.getsockname()[1]
        result = await check("tcp", {"host": "::1", "port": port})
    assert result.status is Status.OK, result.message
    assert f"connected to ::1 port {port}" in result.message


@contextlib.contextmanager
def _full_backlog() -> Iterator[tuple[socket.socket, int]]:
    """A listener whose accept queue is full: the kernel drops new SYNs until it accepts."""
    with socket.create_server(("127.0.0.1", 0), backlog=0) as server:
        port = server.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
            yield server, port
        finally:
            for filler in fillers:
                filler.close()


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the connects that waited on the loop for their handshake."""
    counted: list[int] = []
    settle = tcp._settle

    def counting(done: asyncio.Future[None]) -> None:
        counted.append(1)
        settle(done)

    monkeypatch.setattr(tcp, "_settle", counting)
    return counted


async def test_connect_done_within_the_call_does_not_wait_on_the_loop(
    check: RunCheck, raw_server: RawServer, waits: list[int]
) -> None:
    # Towards this machine the kernel completes the handshake inside connect():
    # the check sees it done and asks nothing of the loop.
    async with raw_server(until_eof) as port:
        result = await check("tcp", {"host": "127.0.0.1", "port": port})
    assert result.status is Status.OK, result.message
    assert waits == []


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_connect_waiting_for_the_handshake_succeeds(
    check: RunCheck, waits: list[int]
) -> None:
    # The SYN is dropped; the kernel sends it again a second later, by when the
    # queue has room: the check waits for the handshake instead of failing.
    with _full_backlog() as (server, port):
        running = asyncio.create_task(check("tcp", {"host": "127.0.0.1", "port": port}, within=5))
        await asyncio.sleep(0.2)
        server.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                server.accept()[0].close()
        result = await running
    assert result.status is Status.OK, result.message
    assert result.metrics["connect_ms"] >= 500
    assert waits == [1]


async def test_connect_that_never_completes_times_out_and_leaves_no_socket(
    check: RunCheck,
) -> None:
    with _full_backlog() as (_, port):
        before = _open_fds()
        result = await check("tcp", {"host": "127.0.0.1", "port": port}, within=0.5)
        assert _open_fds() == before
    assert result.status is Status.FAILED
    assert result.message == f"timed out after 0.5s while connecting to 127.0.0.1 port {port}"


async def test_send_and_expected_reply(check: RunCheck, raw_server: RawServer) -> None:
    async with raw_server(_greeter) as port:
        spec = {"host": "127.0.0.1", "port": port, "send": r"HELLO\r\n", "expect": "welcome"}
        result = await check("tcp", spec)
    assert result.status is Status.OK, result.message
    assert "reply contains 'welcome'" in result.message


async def test_reply_without_expected_text_is_error(check: RunCheck, raw_server: RawServer) -> None:
    async with raw_server(_greeter) as port:
        spec = {"host": "127.0.0.1", "port": port, "send": r"HI\r\n", "expect": "welcome"}
        result = await check("tcp", spec, within=2.0)
    assert result.status is Status.ERROR
    assert result.message == "expected 'welcome', got b'BYE\\r\\n'"
    assert "connect_ms" in result.metrics


async def test_close_before_expected_text_is_error(check: RunCheck, raw_server: RawServer) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 partial")
        await writer.drain()

    async with raw_server(hang_up) as port:
        result = await check("tcp", {"host": "127.0.0.1", "port": port, "expect": "ready"})
    assert result.status is Status.ERROR
    assert result.message == "connection closed before 'ready' came, got b'220 partial'"


async def test_silent_listener_times_out_naming_the_stage(
    check: RunCheck, raw_server: RawServer
) -> None:
    async with raw_server(until_eof) as port:
        result = await check(
            "tcp", {"host": "127.0.0.1", "port": port, "expect": "220"}, within=0.5
        )
    assert result.status is Status.FAILED
    assert result.message == "timed out after 0.5s while waiting for reply containing '220'"
    assert result.duration < 1.5


async def test_endless_reply_without_expected_text_is_capped(
    check: RunCheck, raw_server: RawServer
) -> None:
    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            writer.write(b"z" * 8192)
            await writer.drain()

    async with raw_server(flood) as port:
        result = await check("tcp", {"host": "127.0.0.1", "port": port, "expect": "ready"})
    assert result.status is Status.ERROR
    assert "'ready' not in the first 65536 bytes of the reply" in result.message


async def test_name_is_resolved_through_the_resolver(
    check: RunCheck, raw_server: RawServer
) -> None:
    resolver = FakeResolver({"db.test": ["127.0.0.1"]})
    async with raw_server(until_eof) as port:
        result = await check("tcp", {"host": "db.test", "port": port}, resolver=resolver)
    assert result.status is Status.OK, result.message
    assert f"connected to db.test (127.0.0.1) port {port}" in result.message
    assert resolver.asked == ["db.test"]


async def test_next_address_is_tried_when_one_refuses(
    check: RunCheck, raw_server: RawServer
) -> None:
    # The whole of 127/8 is loopback, but the server listens on 127.0.0.1 only.
    resolver = FakeResolver({"db.test": ["127.0.0.2", "127.0.0.1"]})
    async with raw_server(until_eof) as port:
        result = await check("tcp", {"host": "db.test", "port": port}, resolver=resolver)
    assert result.status is Status.OK, result.message
    assert "(127.0.0.1)" in result.message


async def test_every_address_refusing_names_each(check: RunCheck) -> None:
    resolver = FakeResolver({"db.test": ["127.0.0.2", "127.0.0.3"]})
    result = await check("tcp", {"host": "db.test", "port": free_port()}, resolver=resolver)
    assert result.status is Status.FAILED
    assert "127.0.0.2: connection refused; 127.0.0.3: connection refused" in result.message


async def test_name_that_fake_resolver_does_not_know_fails(check: RunCheck) -> None:
    result = await check("tcp", {"host": "db.test", "port": 5432}, resolver=FakeResolver())
    assert result.status is Status.FAILED
    assert result.message == "cannot resolve db.test: fake resolver: db.test is not known"


async def test_invalid_name_fails_with_system_resolver(check: RunCheck) -> None:
    # RFC 6761: .invalid never resolves, and resolvers answer that locally.
    result = await check("tcp", {"host": "nowhere.invalid", "port": 80}, within=2.0)
    assert result.status is Status.FAILED
    assert result.message.startswith("cannot resolve nowhere.invalid: ")


def test_escapes_in_send_and_expect() -> None:
    assert unescape(r"QUIT\r\n") == "QUIT\r\n"
    assert unescape(r"a\tb\\n") == "a\tb\\n"
    assert unescape(r"keep \d as is") == r"keep \d as is"
    assert unescape("already\r\n") == "already\r\n"
