"""The live stream against a real daemon: hello, state and event frames, pings, slow clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher

from pymon.daemon import Daemon
from pymon.events import Transition
from pymon.model import Event, EventKind, Status
from pymon.web.app import create_app
from pymon.web.stream import StreamSettings
from tests.support.servers import TcpListener
from tests.support.waiting import wait_for
from tests.web.helpers import running

TOKEN = "stream-test-token-0123456789"


def config(tmp_path: Path, port: int, *, web: str = '{listen: "127.0.0.1:0"}') -> str:
    return f"""
storage: {{url: "sqlite:///{tmp_path}/p.db", flush_interval: 50ms}}
web: {web}
defaults: {{interval: 100ms, timeout: 1s, flap_guard: {{failed: 1, ok: 1}}}}
services:
  - {{name: web, type: tcp, host: 127.0.0.1, port: {port}}}
  - {{name: "<script>alert(1)</script>", type: tcp, host: 127.0.0.1, port: {port}}}
  - {{name: job, type: heartbeat, token: {TOKEN}, grace: 1h}}
"""


@pytest.fixture
async def daemon(tmp_path: Path, listener: TcpListener) -> AsyncIterator[Daemon]:
    async with running(config(tmp_path, listener.port)) as d:
        await wait_for(lambda: d.runtime.states["web"].status is Status.OK)
        yield d


@dataclass
class Reader:
    """Reads one SSE response in the background, keeping every frame it parsed."""

    response: httpx.Response
    frames: list[tuple[str, str]] = field(default_factory=list)  # (event or ":" comment, data)
    raw: list[str] = field(default_factory=list)

    async def run(self) -> None:
        kind, data = "message", []
        async for line in self.response.aiter_lines():
            self.raw.append(line)
            if line.startswith(":"):
                self.frames.append((":", line[1:].strip()))
            elif line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                self.frames.append((kind, "\n".join(data)))
                kind, data = "message", []

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [json.loads(data) for k, data in self.frames if k == kind]

    def seen(self, kind: str, pred: Callable[[dict[str, Any]], bool]) -> bool:
        return any(pred(item) for item in self.of(kind))


@contextlib.asynccontextmanager
async def reading(url: str, headers: dict[str, str] | None = None) -> AsyncIterator[Reader]:
    async with (
        httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(10, read=None)) as client,
        client.stream("GET", url) as response,
    ):
        reader = Reader(response)
        task = asyncio.create_task(reader.run())
        try:
            yield reader
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await task


def stream_url(d: Daemon, base: str = "") -> str:
    return f"http://127.0.0.1:{d.web_port}{base}/api/v1/stream"


async def test_stream_opens_with_retry_hello_and_counts(daemon: Daemon) -> None:
    async with reading(stream_url(daemon)) as reader:
        await wait_for(lambda: len(reader.of("counts")) >= 1)
        assert reader.response.headers["content-type"].startswith("text/event-stream")
        assert reader.raw[0] == "retry: 2000"
        assert reader.frames[0][0] == "hello"
        hello = reader.of("hello")[0]
        assert hello["services"] == 3 and hello["version"] and "instance" in hello
        counts = reader.of("counts")[0]
        assert set(counts) == {s.value for s in Status}
        assert sum(counts.values()) == 3


async def test_a_stopped_target_shows_as_a_failed_state_and_an_event(
    daemon: Daemon, listener: TcpListener
) -> None:
    async with reading(stream_url(daemon)) as reader:
        await wait_for(lambda: bool(reader.of("hello")))
        await listener.stop()
        await wait_for(
            lambda: reader.seen("state", lambda s: s["name"] == "web" and s["status"] == "failed")
        )
        await wait_for(
            lambda: reader.seen("event", lambda e: e["service"] == "web" and e["kind"] == "changed")
        )
        await wait_for(lambda: reader.seen("counts", lambda c: c["failed"] >= 1))
        row = next(s for s in reader.of("state") if s["status"] == "failed")
        for key in ("type", "tags", "acknowledged", "incident", "last_check", "message"):
            assert key in row


async def test_a_recovering_target_shows_as_ok_again(daemon: Daemon, listener: TcpListener) -> None:
    await listener.stop()
    await wait_for(lambda: daemon.runtime.states["web"].status is Status.FAILED)
    async with reading(stream_url(daemon)) as reader:
        await wait_for(lambda: bool(reader.of("hello")))
        await listener.start()
        await wait_for(
            lambda: reader.seen("state", lambda s: s["name"] == "web" and s["status"] == "ok")
        )


async def test_state_changes_of_one_service_are_coalesced(daemon: Daemon) -> None:
    # A service checked every 100 ms changes state (seq) on every run; the stream
    # sends it at most once per window, so far fewer frames than runs.
    async with reading(stream_url(daemon)) as reader:
        start = daemon.runtime.states["web"].seq
        await wait_for(lambda: daemon.runtime.states["web"].seq >= start + 10)
        frames = sum(1 for s in reader.of("state") if s["name"] == "web")
        assert 0 < frames < daemon.runtime.states["web"].seq - start


async def test_a_newline_in_a_message_cannot_forge_frames(daemon: Daemon) -> None:
    forged = 'late\n\nevent: hello\ndata: {"forged": true}\n\n'
    async with reading(stream_url(daemon)) as reader:
        await wait_for(lambda: bool(reader.of("hello")))
        async with httpx.AsyncClient() as client:
            pushed = await client.post(
                f"http://127.0.0.1:{daemon.web_port}/api/v1/heartbeat/{TOKEN}",
                params={"status": "fail", "msg": forged},
            )
            assert pushed.status_code == 200
        await wait_for(
            lambda: reader.seen("state", lambda s: s["name"] == "job" and "late" in s["message"])
        )
        assert len(reader.of("hello")) == 1
        assert not any("forged" in data for _, data in reader.frames if _ == "hello")


async def test_a_hostile_service_name_is_plain_json(daemon: Daemon, listener: TcpListener) -> None:
    name = "<script>alert(1)</script>"
    async with reading(stream_url(daemon)) as reader:
        await wait_for(lambda: bool(reader.of("hello")))
        await listener.stop()
        await wait_for(lambda: reader.seen("state", lambda s: s["name"] == name))


async def test_the_stream_is_under_base_path(tmp_path: Path, listener: TcpListener) -> None:
    web = '{listen: "127.0.0.1:0", base_path: /mon}'
    async with running(config(tmp_path, listener.port, web=web)) as d:
        async with reading(stream_url(d, "/mon")) as reader:
            await wait_for(lambda: bool(reader.of("hello")))
        async with httpx.AsyncClient() as client:
            assert (await client.get(stream_url(d))).status_code == 404


@contextlib.asynccontextmanager
async def serving(d: Daemon, settings: StreamSettings) -> AsyncIterator[str]:
    """The daemon's web app with other stream timings, served by uvicorn on a free port."""
    app = create_app(d.runtime)
    app.state.stream_settings = settings
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await wait_for(lambda: server.started)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/api/v1/stream"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_an_idle_stream_gets_ping_comments(daemon: Daemon) -> None:
    async with (
        serving(daemon, StreamSettings(ping=0.05)) as url,
        reading(url) as reader,
    ):
        await wait_for(lambda: sum(1 for k, d in reader.frames if (k, d) == (":", "ping")) >= 2)


async def test_a_slow_client_is_dropped_while_a_fast_one_keeps_up(
    daemon: Daemon, listener: TcpListener, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pymon.bus")
    async with reading(stream_url(daemon)) as fast:
        await wait_for(lambda: bool(fast.of("hello")))
        # The slow client asks for the stream and then never reads: a small receive
        # window makes the server's writes stall soon.
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(slow, ("127.0.0.1", daemon.web_port or 0))
        request = (
            "GET /api/v1/stream HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{daemon.web_port}\r\nConnection: close\r\n\r\n"
        )
        await loop.sock_sendall(slow, request.encode())
        try:
            # Fat events, paced by the fast client: it has every batch before the next.
            sent = 0
            runs = daemon.runtime.scheduler.stats.runs
            while "dropped" not in caplog.text:
                for _ in range(200):
                    sent += 1
                    event = fat_event(sent)
                    daemon.bus.publish(Transition(event.service, event))
                await wait_for(lambda: count_fat(fast) >= sent)  # noqa: B023
                assert sent < 200_000, "the slow client was never dropped"
            # The fast client still gets live changes, and checks kept running.
            await listener.stop()
            await wait_for(
                lambda: fast.seen("state", lambda s: s["name"] == "web" and s["status"] == "failed")
            )
            assert daemon.runtime.scheduler.stats.runs > runs
            # Once it reads, the slow client finds its stream ended (to reconnect and resync).
            async with asyncio.timeout(30):
                while await loop.sock_recv(slow, 1 << 20):
                    pass
        finally:
            slow.close()


def fat_event(n: int) -> Event:
    return Event(f"fat-{n}", EventKind.CHANGED, 0.0, Status.FAILED, Status.OK, "x" * 8000)


def count_fat(reader: Reader) -> int:
    return sum(1 for k, d in reader.frames if k == "event" and '"fat-' in d)


async def test_the_stream_needs_credentials_when_reading_is_closed(
    tmp_path: Path, listener: TcpListener
) -> None:
    secret = "stream-reader-secret"
    token_hash = PasswordHasher().hash(secret)
    tokens = f'[{{name: r, token_hash: "{token_hash}"}}]'
    web = f'{{listen: "127.0.0.1:0", auth: {{read: true, tokens: {tokens}}}}}'
    async with running(config(tmp_path, listener.port, web=web)) as d:
        async with httpx.AsyncClient() as client:
            refused = await client.get(stream_url(d))
            assert refused.status_code == 401 and "error" in refused.json()
            wrong = await client.get(stream_url(d), headers={"Authorization": "Bearer nope"})
            assert wrong.status_code in (401, 403)
        async with reading(stream_url(d), {"Authorization": f"Bearer {secret}"}) as reader:
            assert reader.response.status_code == 200
            await wait_for(lambda: bool(reader.of("hello")))
