"""Rendered status pages and badges kept for a few seconds, so that a thousand
requests a second for the same page cost one rendering per ``ttl``.

Each entry is the finished body (bytes) under a key the caller makes (the config,
the page and its form, the public prefix...). When an entry is missing or stale,
the first request renders it and every request that comes meanwhile waits for that
one rendering instead of starting its own. The clock is the engine's, so tests move
time by hand.
"""

from __future__ import annotations

import asyncio
import gzip
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["TTL", "Rendered", "Snapshots"]

TTL: Final = 10.0
"""Seconds a rendered status page or badge is served before it is rendered again."""


_GZIP_FROM: Final = 1400  # bytes: below one packet, compressing saves nothing


@dataclass(frozen=True, slots=True)
class Rendered:
    """A finished body, and the same gzipped when that is worth it (compressed once per
    rendering: a 200-component page is ~1 MB of markup and ~40 kB gzipped)."""

    body: bytes
    gzipped: bytes | None

    @classmethod
    def of(cls, body: bytes) -> Rendered:
        """``body``, gzipped too if it is large enough."""
        return cls(body, gzip.compress(body, 6) if len(body) >= _GZIP_FROM else None)

    def response(self, request: Request, media_type: str, headers: dict[str, str]) -> Response:
        """The answer to ``request``: gzipped when the client takes it."""
        if self.gzipped is None:
            return Response(self.body, media_type=media_type, headers=headers)
        vary = {**headers, "Vary": "Accept-Encoding"}
        if "gzip" in request.headers.get("accept-encoding", ""):
            zipped = {**vary, "Content-Encoding": "gzip"}
            return Response(self.gzipped, media_type=media_type, headers=zipped)
        return Response(self.body, media_type=media_type, headers=vary)


class Snapshots:
    """Rendered bodies by key, each served for ``ttl`` seconds of ``clock``; at most ``limit``
    kept (the least recently made go first)."""

    def __init__(self, clock: Callable[[], float], ttl: float = TTL, limit: int = 2000) -> None:
        self._clock = clock
        self._ttl = ttl
        self._limit = limit
        self._bodies: OrderedDict[Hashable, tuple[float, Rendered]] = OrderedDict()
        self._making: dict[Hashable, asyncio.Future[Rendered]] = {}
        #: How many bodies were made (a test tells a cached answer from a fresh one).
        self.made = 0

    async def get(
        self, key: Hashable, make: Callable[[], Awaitable[bytes]], ttl: float | None = None
    ) -> Rendered:
        """The body under ``key``: the kept one while fresh, else ``make()``'s (once for
        every request waiting on it; an error reaches them all and nothing is kept).
        ``ttl`` is this entry's time to live if not the cache's; 0 keeps nothing and
        shares nothing: every call makes its own."""
        if ttl == 0:
            return Rendered.of(await make())
        kept = self._bodies.get(key)
        now = self._clock()
        if kept is not None and kept[0] > now:
            return kept[1]
        pending = self._making.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Rendered] = asyncio.get_running_loop().create_future()
        self._making[key] = future
        try:
            rendered = Rendered.of(await make())
        except Exception as exc:
            future.set_exception(exc)
            # Retrieved here so that no waiter-less future logs "never retrieved".
            future.exception()
            raise
        except BaseException:
            future.cancel()
            raise
        else:
            future.set_result(rendered)
            self.made += 1
            self._keep(key, rendered, self._clock() + (self._ttl if ttl is None else ttl))
            return rendered
        finally:
            del self._making[key]

    def _keep(self, key: Hashable, rendered: Rendered, until: float) -> None:
        self._bodies[key] = (until, rendered)
        self._bodies.move_to_end(key)
        while len(self._bodies) > self._limit:
            self._bodies.popitem(last=False)
