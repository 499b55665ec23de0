"""A stand-in for PagerDuty's and Opsgenie's APIs: an aiohttp server on 127.0.0.1 that
records every request and answers as scripted (429 with Retry-After, 500...), then 202."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.servers import reserved_port

__all__ = ["AlertService", "Answer", "Request"]


@dataclass(frozen=True)
class Answer:
    """One scripted answer."""

    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """One request as the service got it, with the answer it was given."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]
    status: int


class AlertService:
    """Records requests; answers the scripted ones first, then 202 with a small JSON body."""

    def __init__(self, *script: Answer) -> None:
        self.script = list(script)
        self.requests: list[Request] = []
        self.port = reserved_port()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def accepted(self) -> list[Request]:
        """The requests answered 2xx."""
        return [r for r in self.requests if 200 <= r.status < 300]

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        answer = self.script.pop(0) if self.script else Answer(202, '{"status":"success"}')
        self.requests.append(
            Request(
                request.method,
                # The path as sent, escapes and all (an alias is one segment).
                request.raw_path.split("?", 1)[0],
                dict(request.query),
                dict(request.headers),
                json.loads(raw) if raw else {},
                answer.status,
            )
        )
        return web.Response(status=answer.status, text=answer.body, headers=answer.headers)

    async def start(self) -> AlertService:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
