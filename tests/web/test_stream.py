"""The live stream on a fake engine port: framing, hello, state and event frames, counts,
coalescing, pings, slow clients and read protection.

httpx's ASGITransport hands a response over only once its body is complete, which a
stream never is, so :class:`Stream` drives the ASGI app itself: it sends one GET,
takes the response's messages as the app sends them, and parses its body into
frames. Frames are read as they come; nothing here waits for a time to pass, except
the ping test, which waits for pings sent every 10 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from starlette.types import Message

from pymon.events import Transition
from pymon.model import Event, EventKind, Status
from pymon.web.app import create_app
from pymon.web.stream import StreamSettings
from tests.support.port import FakePort, fake_port
from tests.web.helpers import app_client

TOKEN = "stream-test-token-0123456789"
XSS = "<script>alert(1)</script>"
#: State changes become frames as soon as the hub takes them (no window to wait out).
AT_ONCE = StreamSettings(coalesce=0.0)


def config(web: str = "{}") -> str:
    return f"""
web: {web}
defaults: {{flap_guard: {{failed: 1, ok: 1}}}}
services:
  - {{name: web, type: tcp, host: 127.0.0.1, port: 9}}
  - {{name: "{XSS}", type: tcp, host: 127.0.0.1, port: 9}}
  - {{name: job, type: heartbeat, token: {TOKEN}, grace: 1h}}
"""


@pytest.fixture
def port() -> FakePort:
    port = fake_port(config())
    port.check("web", Status.OK, "connected")
    port.check(XSS, Status.OK, "connected")
    return port


def app_for(port: FakePort, settings: StreamSettings = AT_ONCE) -> FastAPI:
    app = create_app(port)
    app.state.stream_settings = settings
    return app


@dataclass(frozen=True)
class Frame:
    """One block of the stream: its ``event`` (``:`` for a comment), data and retry."""

    kind: str
    data: str
    retry: str | None = None

    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.data)
        return parsed


class Stream:
    """One GET of the stream driven straight through the ASGI app.

    With ``hold``, the app's writes of body chunks wait until :meth:`release`: a
    client that has stopped reading, as far as the app can tell.
    """

    def __init__(self, app: FastAPI, path: str, headers: dict[str, str], hold: bool) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.raw = ""
        self.frames: list[Frame] = []
        self.ended = False
        self._app = app
        self._path = path
        self._headers = headers
        self._messages: asyncio.Queue[Message] = asyncio.Queue()
        self._requested = False
        self._gone = asyncio.Event()
        self._released = asyncio.Event()
        if not hold:
            self._released.set()
        self._buffer = ""
        self.task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Send the request and wait for the response to start."""
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": self._path,
            "raw_path": self._path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1:8080"),
                *((k.lower().encode(), v.encode()) for k, v in self._headers.items()),
            ],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8080),
        }
        self.task = asyncio.create_task(self._app(scope, self._receive, self._send))
        start = await self._next_message()
        assert start["type"] == "http.response.start"
        self.status = start["status"]
        self.headers = {k.decode(): v.decode() for k, v in start["headers"]}

    async def _receive(self) -> Message:
        if not self._requested:
            self._requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        if message["type"] == "http.response.body":
            await self._released.wait()
        self._messages.put_nowait(message)

    async def _next_message(self) -> Message:
        async with asyncio.timeout(10):  # a safety net against a hang, not a measure
            return await self._messages.get()

    async def next(self) -> Frame | None:
        """The next frame as the app sends it; None once the response has ended."""
        while "\n\n" not in self._buffer:
            if self.ended:
                return None
            message = await self._next_message()
            chunk = message.get("body", b"").decode()
            self.raw += chunk
            self._buffer += chunk
            self.ended = not message.get("more_body", False)
        block, self._buffer = self._buffer.split("\n\n", 1)
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            fields[name or ":"] = value.strip()
        if ":" in fields:
            frame = Frame(":", fields[":"])
        else:
            kind = fields.get("event", "message")
            frame = Frame(kind, fields.get("data", ""), fields.get("retry"))
        self.frames.append(frame)
        return frame

    async def next_of(self, kind: str) -> Frame:
        """The next frame of ``kind``, passing over others."""
        while (frame := await self.next()) is not None:
            if frame.kind == kind:
                return frame
        raise AssertionError(f"the stream ended before a {kind} frame")

    def release(self) -> None:
        """Let the held writes through."""
        self._released.set()

    async def close(self) -> None:
        """Disconnect, and wait for the app to finish the response."""
        self.release()
        self._gone.set()
        if self.task is not None:
            await self.task


@contextlib.asynccontextmanager
async def streaming(
    app: FastAPI,
    path: str = "/api/v1/stream",
    headers: dict[str, str] | None = None,
    *,
    hold: bool = False,
) -> AsyncIterator[Stream]:
    stream = Stream(app, path, headers or {}, hold)
    await stream.open()
    try:
        yield stream
    finally:
        await stream.close()


async def opened(stream: Stream) -> None:
    """Read the opening frames: hello, then counts."""
    hello, counts = await stream.next(), await stream.next()
    assert hello is not None and hello.kind == "hello"
    assert counts is not None and counts.kind == "counts"


async def test_stream_opens_with_retry_hello_and_counts(port: FakePort) -> None:
    async with streaming(app_for(port)) as stream:
        hello = await stream.next()
        counts = await stream.next()
    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["cache-control"] == "no-cache"
    assert stream.headers["x-accel-buffering"] == "no"
    assert stream.raw.startswith("retry: 2000\nevent: hello\n")
    assert hello is not None and hello.kind == "hello" and hello.retry == "2000"
    assert hello.json()["services"] == 3 and hello.json()["version"]
    assert "instance" in hello.json()
    assert counts is not None and counts.kind == "counts"
    assert counts.json() == {s.value: 0 for s in Status} | {"ok": 2, "unknown": 1}


async def test_a_failed_check_shows_as_events_a_state_and_counts(port: FakePort) -> None:
    async with streaming(app_for(port)) as stream:
        await opened(stream)
        port.check("web", Status.FAILED, "connection refused")
        frames = []
        while (frame := await stream.next()) is not None and frame.kind != "counts":
            frames.append(frame)
    events = [f.json() for f in frames if f.kind == "event"]
    assert events == [e.to_dict() for e in reversed(await port.events(len(events), "web"))]
    assert ("web", "changed") in {(e["service"], e["kind"]) for e in events}
    (state,) = [f.json() for f in frames if f.kind == "state"]
    assert (state["name"], state["status"], state["message"]) == (
        "web",
        "failed",
        "connection refused",
    )
    for key in ("type", "tags", "acknowledged", "incident", "last_check", "message"):
        assert key in state
    assert frame is not None and frame.json()["failed"] == 1


async def test_a_recovering_service_shows_as_ok_again(port: FakePort) -> None:
    port.check("web", Status.FAILED, "connection refused")
    async with streaming(app_for(port)) as stream:
        await opened(stream)
        port.check("web", Status.OK, "connected")
        state = await stream.next_of("state")
        counts = await stream.next_of("counts")
    assert (state.json()["name"], state.json()["status"]) == ("web", "ok")
    assert (counts.json()["ok"], counts.json()["failed"]) == (2, 0)


async def test_changes_that_come_together_make_one_state_frame(port: FakePort) -> None:
    async with streaming(app_for(port)) as stream:
        await opened(stream)
        for _ in range(10):  # ten checks before the hub gets to run: one frame
            port.check("web", Status.OK, "connected")
        first = await stream.next()
        port.check(XSS, Status.OK, "connected")
        second = await stream.next()
    assert first is not None and first.kind == "state"
    assert (first.json()["name"], first.json()["seq"]) == ("web", port.states["web"].seq)
    assert second is not None and second.kind == "state" and second.json()["name"] == XSS


async def test_a_newline_in_a_message_cannot_forge_frames(port: FakePort) -> None:
    forged = 'late\n\nevent: hello\ndata: {"forged": true}\n\n'
    async with streaming(app_for(port)) as stream:
        await opened(stream)
        port.check("job", Status.FAILED, forged)
        state = await stream.next_of("state")
    assert state.json()["message"] == forged
    kinds = [f.kind for f in stream.frames]
    assert kinds.count("hello") == 1 and set(kinds) == {"hello", "counts", "event", "state"}
    # The message rides inside one JSON data line of each frame that carries it.
    carrying = [line for line in stream.raw.split("\n") if "forged" in line]
    assert carrying and all(line.startswith("data: {") for line in carrying)
    assert all(isinstance(f.json(), dict) for f in stream.frames)


async def test_a_hostile_service_name_is_plain_json(port: FakePort) -> None:
    async with streaming(app_for(port)) as stream:
        await opened(stream)
        port.check(XSS, Status.FAILED, XSS)
        state = await stream.next_of("state")
    assert (state.json()["name"], state.json()["message"]) == (XSS, XSS)


async def test_the_stream_is_under_base_path() -> None:
    port = fake_port(config("{base_path: /mon}"))
    async with streaming(app_for(port), "/mon/api/v1/stream") as stream:
        await opened(stream)
    async with app_client(port) as c:
        assert (await c.get("/api/v1/stream")).status_code == 404


async def test_an_idle_stream_gets_ping_comments(port: FakePort) -> None:
    async with streaming(app_for(port, StreamSettings(ping=0.01))) as stream:
        await opened(stream)
        assert await stream.next() == Frame(":", "ping")
        assert await stream.next() == Frame(":", "ping")


async def test_counts_changed_without_a_hint_show_at_the_next_poll(port: FakePort) -> None:
    # Another node's service changed in the store: no hint on this node's bus.
    async with streaming(app_for(port, StreamSettings(coalesce=0.0, poll=0.01))) as stream:
        await opened(stream)
        port.states["web"] = replace(port.states["web"], status=Status.FAILED)
        counts = await stream.next_of("counts")
    assert (counts.json()["ok"], counts.json()["failed"]) == (1, 1)


async def test_a_slow_client_is_dropped_while_a_fast_one_keeps_up(
    port: FakePort, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pymon.bus")
    app = app_for(port, StreamSettings(coalesce=0.0, client_queue=8))
    async with streaming(app) as fast, streaming(app, hold=True) as slow:
        await opened(fast)
        # The slow client reads nothing: the app's first write to it never returns.
        sent = 0
        while "dropped" not in caplog.text:
            sent += 1
            event = Event(f"burst-{sent}", EventKind.CHANGED, 0.0, Status.FAILED, Status.OK, "x")
            port.bus.publish(Transition(event.service, event))
            assert (await fast.next_of("event")).json()["service"] == f"burst-{sent}"
        assert sent == 9  # eight frames waited for it; the ninth found no room
        # The fast client still gets what happens next.
        port.check("web", Status.FAILED, "connection refused")
        assert (await fast.next_of("state")).json()["status"] == "failed"
        # Once it reads, the slow client finds its stream ended (to reconnect and resync).
        slow.release()
        assert slow.task is not None
        await slow.task
        hello = await slow.next()
        assert hello is not None and hello.kind == "hello"
        assert await slow.next_of("counts")
        assert await slow.next() is None


async def test_the_stream_needs_credentials_when_reading_is_closed() -> None:
    token_hash = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("reader")
    tokens = f'[{{name: r, token_hash: "{token_hash}"}}]'
    port = fake_port(config(f"{{auth: {{read: true, tokens: {tokens}}}}}"))
    async with app_client(port) as c:
        refused = await c.get("/api/v1/stream")
        wrong = await c.get("/api/v1/stream", headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401 and "error" in refused.json()
    assert wrong.status_code == 403
    async with streaming(app_for(port), headers={"Authorization": "Bearer reader"}) as stream:
        assert stream.status == 200
        await opened(stream)
