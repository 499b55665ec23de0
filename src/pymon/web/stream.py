"""``GET /api/v1/stream``: the engine's changes as Server-Sent Events, for the live pages.

One :class:`StreamHub` per app subscribes through the engine's port (a bounded,
droppable subscription, never one of the bus's synchronous listeners), coalesces state changes
per service over a short window, renders each frame once, and fans the frames out
over a second :class:`~pymon.engine.bus.Bus` to every connected client. A client
that cannot keep up (its queue of frames fills) is dropped: its stream ends and the
browser reconnects (``retry``) and resyncs from ``/api/v1/services``. Checks never
wait for a client.

Frames, in order: ``retry: 2000`` and ``event: hello`` (instance, version, number
of services), ``event: counts`` (services per status), then as things happen
``event: state`` (a service as the API shows it), ``event: event`` (a transition, as
``/api/v1/events`` shows it) and ``event: counts`` whenever the counts change; a
``: ping`` comment keeps idle connections (and the proxies between) alive.

A location check (``web@eu-west``) is not listed, so it has no ``state`` frame of its
own: its change sends its service's (``web``, whose ``locations`` show it).

In a cluster, the services another node runs change in the store, not on this
node's bus: while clients are connected the hub asks the counts every ``poll``
seconds, which reads the store again when its copy is old, and the engine hints
the services that changed there as it does its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from pymon import __version__
from pymon.engine.bus import Bus, Subscription
from pymon.events import TRANSITION_TYPES, BusItem, StateChanged
from pymon.locations import split
from pymon.web.auth import require_read
from pymon.web.views import service_json

if TYPE_CHECKING:
    from pymon.engine.ports import EnginePort

__all__ = ["StreamHub", "StreamSettings", "router"]

log = logging.getLogger("pymon.web")

router = APIRouter()


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """Timings of the stream; set ``app.state.stream_settings`` before the first client
    connects to change them (tests do, to see a ping without waiting 15 s)."""

    ping: float = 15.0  # seconds between ping comments
    coalesce: float = 0.2  # state changes of one service within this window make one frame
    client_queue: int = 1000  # frames a client may fall behind before it is dropped
    source_queue: int = 100_000  # bus items the hub may fall behind (then every client resyncs)
    retry_ms: int = 2000  # the browser's reconnection delay
    poll: float = 1.0  # seconds between asks for the counts (other nodes' changes)


def _frame(kind: str, data: dict[str, Any]) -> bytes:
    # json.dumps escapes newlines, so the data is always one `data:` line.
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class StreamHub:
    """Renders the engine's changes into frames once and fans them out to every client."""

    def __init__(self, port: EnginePort, settings: StreamSettings) -> None:
        self.port = port
        self.settings = settings
        self.frames: Bus[bytes] = Bus()
        self._source: Subscription[BusItem] | None = None
        self._task: asyncio.Task[None] | None = None

    def join(self) -> Subscription[bytes]:
        """A new client's subscription to the frames; starts listening to the engine if idle."""
        sub = self.frames.subscribe(self.settings.client_queue)
        if self._source is None or self._source.closed:
            # A fresh source each time: a hub task still winding down keeps its own.
            self._source = self.port.subscribe(self.settings.source_queue)
            self._task = asyncio.create_task(self._run(self._source), name="web-stream")
        return sub

    def leave(self, sub: Subscription[bytes]) -> None:
        """A client is gone; with the last one, stop listening to the engine."""
        sub.close()
        if not len(self.frames) and self._source is not None:
            self._source.close()

    async def hello(self) -> bytes:
        """The first frames a client gets: retry delay, hello, current counts."""
        counts = await self.port.status_counts()
        hello = {
            "instance": self.port.config.instance.name,
            "version": __version__,
            "services": sum(counts.values()),
        }
        retry = f"retry: {self.settings.retry_ms}\n".encode()
        return retry + _frame("hello", hello) + _frame("counts", counts)

    async def _run(self, source: Subscription[BusItem]) -> None:
        loop = asyncio.get_running_loop()
        settings = self.settings
        pending: dict[str, None] = {}  # names in arrival order, each once
        flush_at = 0.0
        ping_at = loop.time() + settings.ping
        poll_at = loop.time() + settings.poll
        counts = await self.port.status_counts()
        while True:
            wake = flush_at if pending else min(ping_at, poll_at)
            items = await source.batch(max(0.0, wake - loop.time()))
            if source.closed:
                break
            for item in items:
                if isinstance(item, StateChanged):
                    if not pending:
                        flush_at = loop.time() + settings.coalesce
                    pending[_shown(item.name)] = None
                elif isinstance(item, TRANSITION_TYPES):
                    self.frames.publish(_frame("event", item.event.to_dict()))
            now = loop.time()
            if pending and now >= flush_at:
                counts = await self._flush(pending, counts)
                pending = {}
            elif not pending and now >= poll_at:
                # Nothing of this node's waits: the others' may have changed the counts.
                fresh = await self.port.status_counts()
                if fresh != counts:
                    self.frames.publish(_frame("counts", fresh))
                counts, poll_at = fresh, now + settings.poll
            if now >= ping_at:
                self.frames.publish(b": ping\n\n")
                ping_at = now + settings.ping
        if source.dropped:
            # We fell behind the engine: what was lost is unknown, so every client resyncs.
            log.warning("web stream: fell behind the engine; every client reconnects")
            self.frames.close_all()

    async def _flush(self, names: dict[str, None], counts: dict[str, int]) -> dict[str, int]:
        for name in names:
            view = await self.port.service(name)
            if view is not None:  # else removed meanwhile
                self.frames.publish(_frame("state", service_json(view)))
        now_counts = await self.port.status_counts()
        if now_counts != counts:
            self.frames.publish(_frame("counts", now_counts))
        return now_counts


def _shown(name: str) -> str:
    """The service whose row shows ``name``'s state: its own, or a location check's
    service."""
    parent = split(name)
    return name if parent is None else parent[0]


def _hub(request: Request) -> StreamHub:
    state = request.app.state
    hub: StreamHub | None = getattr(state, "stream_hub", None)
    if hub is None:
        settings = getattr(state, "stream_settings", None) or StreamSettings()
        hub = state.stream_hub = StreamHub(state.port, settings)
    return hub


async def _client(hub: StreamHub, sub: Subscription[bytes], first: bytes) -> AsyncIterator[bytes]:
    try:
        yield first
        while True:
            frames = await sub.batch()
            if not frames:
                if sub.closed:
                    return
                continue
            # One write per wake-up however many frames piled up meanwhile.
            yield b"".join(frames)
    finally:
        hub.leave(sub)


@router.get(
    "/api/v1/stream", response_class=StreamingResponse, dependencies=[Depends(require_read)]
)
async def stream(request: Request) -> StreamingResponse:
    """Live changes as Server-Sent Events: hello, counts, state, event, ping."""
    hub = _hub(request)
    sub = hub.join()
    return StreamingResponse(
        _client(hub, sub, await hub.hello()),
        media_type="text/event-stream",
        headers={
            "Cache-Control": "no-cache",
            # nginx buffers proxied responses unless told not to; a stream must not wait.
            "X-Accel-Buffering": "no",
        },
    )
