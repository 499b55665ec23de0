"""The one aiohttp session every http check shares, the response class it makes, and
the lean client beside it.

The session opens a fresh connection per request and keeps no cookies; its
response class takes the peer certificate as the response starts and moves the
running check's stage along (``current_check``), so a timeout can say where the
target stopped answering. :func:`new_session` also makes the session's lean
HTTP/1.1 client (``checks/_http1.py``) with the same default headers and trust;
:func:`lean_client` finds it.
"""

from __future__ import annotations

import functools
import ssl
import weakref
from contextvars import ContextVar

import aiohttp
from aiohttp.connector import Connection

from pymon import __version__
from pymon.checks._http1 import REDIRECTS, Http1Client
from pymon.checks.base import CheckContext

__all__ = ["HttpSessions", "Response", "current_check", "lean_client", "new_session"]

# The running http check's context, for Response.start to move its stage along.
# aiohttp's TraceConfig hooks could do that too, but a session with any trace hook
# runs the whole tracing machinery on every request: 8-10 % of an http check's CPU.
current_check: ContextVar[CheckContext | None] = ContextVar("pymon_http_check", default=None)

# Each session's lean client, if it was made with one.
_lean: weakref.WeakKeyDictionary[aiohttp.ClientSession, Http1Client] = weakref.WeakKeyDictionary()


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
        if ctx is not None and self.status in REDIRECTS:
            # When redirects are followed, the next hop's connect comes next (when
            # not, the check moves on to reading the body at once).
            ctx.stage = "following a redirect"
        return response

    @property
    def redirects(self) -> int:
        """How many redirects led here."""
        return len(self.history)

    async def read_at_most(self, limit: int) -> tuple[bytes, bool]:
        """At most ``limit`` bytes of the body, and whether more may have followed.

        When more may follow, the connection is dropped rather than drained.
        """
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            chunk = await self.content.read(limit - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        truncated = not self.content.at_eof()
        if truncated:
            self.close()
        return b"".join(chunks), truncated


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


def lean_client(session: aiohttp.ClientSession) -> Http1Client | None:
    """The lean client made beside ``session`` by :func:`new_session`, if any."""
    return _lean.get(session)


@functools.cache
def _default_trust() -> ssl.SSLContext:
    # As aiohttp's own verified context (connector.py, _make_ssl_context).
    context = ssl.create_default_context()
    context.set_alpn_protocols(("http/1.1",))
    return context


def new_session(
    ssl_context: ssl.SSLContext | None = None, lean: bool = True
) -> aiohttp.ClientSession:
    """An aiohttp session made for http checks; the daemon shares one among all of them.

    Call it inside the running loop. Every request gets a fresh connection (a reused
    one would hide a server that no longer accepts new ones, and skew timings), no
    cookies carry over from one check to the next, and the only time limit is the
    check's own. No trace hooks (see ``current_check``). ``ssl_context`` replaces
    the system CA store for verified requests (tests trust their own CA with it).
    With ``lean`` (the default) the session gets a lean client beside it, with the
    same default headers and trust, for the requests within its scope (see
    ``checks/http.py``, ``_lean``); without, every request goes through aiohttp.
    """
    connector = aiohttp.TCPConnector(
        force_close=True,
        # The scheduler bounds concurrency; a connector queue would look like a slow target.
        limit=0,
        ssl=ssl_context if ssl_context is not None else True,
    )
    headers = {"User-Agent": f"pymon/{__version__}"}
    session = aiohttp.ClientSession(
        connector=connector,
        headers=headers,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=None),
        response_class=Response,
    )
    if lean:
        _lean[session] = Http1Client(headers, ssl_context or _default_trust())
    return session
