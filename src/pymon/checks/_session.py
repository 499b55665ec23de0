"""The one aiohttp session every http check shares, and the response class it makes.

The session opens a fresh connection per request and keeps no cookies; its
response class takes the peer certificate as the response starts and moves the
running check's stage along (``current_check``), so a timeout can say where the
target stopped answering.
"""

from __future__ import annotations

import ssl
from contextvars import ContextVar

import aiohttp
from aiohttp.connector import Connection

from pymon import __version__
from pymon.checks.base import CheckContext

__all__ = ["HttpSessions", "Response", "current_check", "new_session"]

# The running http check's context, for Response.start to move its stage along.
# aiohttp's TraceConfig hooks could do that too, but a session with any trace hook
# runs the whole tracing machinery on every request: 8-10 % of an http check's CPU.
current_check: ContextVar[CheckContext | None] = ContextVar("pymon_http_check", default=None)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class Response(aiohttp.ClientResponse):
    """A response that keeps the peer certificate of the connection it came on.

    aiohttp hands the connection back as soon as the body is in (for a small body,
    before the caller sees the response), so the certificate is taken as it starts.
    ``start`` runs once the request is sent, so it also moves the check's stage on.
    """

    peer_cert: bytes | None = None

    async def start(self, connection: Connection) -> aiohttp.ClientResponse:
        ctx = current_check.get()
        if ctx is not None:
            ctx.stage = "waiting for response headers"
        transport = connection.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        if isinstance(ssl_object, ssl.SSLObject):
            self.peer_cert = ssl_object.getpeercert(binary_form=True)
        response = await super().start(connection)
        if ctx is not None and self.status in _REDIRECTS:
            # When redirects are followed, the next hop's connect comes next (when
            # not, the check moves on to reading the body at once).
            ctx.stage = "following a redirect"
        return response


class HttpSessions:
    """One lazily created session (see :func:`new_session`) shared by all http checks."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def get(self) -> aiohttp.ClientSession:
        """The shared session, created on first use inside the running loop."""
        if self._session is None or self._session.closed:
            self._session = new_session()
        return self._session

    async def close(self) -> None:
        """Close the session if one was made."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def new_session(ssl_context: ssl.SSLContext | None = None) -> aiohttp.ClientSession:
    """An aiohttp session made for http checks; the daemon shares one among all of them.

    Call it inside the running loop. Every request gets a fresh connection (a reused
    one would hide a server that no longer accepts new ones, and skew timings), no
    cookies carry over from one check to the next, and the only time limit is the
    check's own. No trace hooks (see ``current_check``). ``ssl_context`` replaces
    the system CA store for verified requests (tests trust their own CA with it).
    """
    connector = aiohttp.TCPConnector(
        force_close=True,
        # The scheduler bounds concurrency; a connector queue would look like a slow target.
        limit=0,
        ssl=ssl_context if ssl_context is not None else True,
    )
    return aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": f"pymon/{__version__}"},
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=None),
        response_class=Response,
    )
