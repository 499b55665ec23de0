"""The lean HTTP/1.1 client: one GET or HEAD on a fresh connection, on an asyncio Protocol.

It does what the plain http check needs and no more, at about half of aiohttp's
cost per check (docs/performance.md, "A lean HTTP/1.1 path"): the request goes out
in one write; the Protocol parses the status line and headers, skips 1xx
responses, and reads the body as it arrives (Content-Length, chunked, or until
the close; gzip and deflate decoded) up to the check's limit, then drops the
connection. Redirects are followed as aiohttp follows them.

Whatever it does not know how to word as aiohttp would, it does not word at all:
it raises :class:`Handover`, and the check asks aiohttp instead. That covers a
response that is not strictly well-formed (a bad status line, odd header
syntax, conflicting lengths, a broken chunk), a body that ends early or does not
decode, other encodings, a reset connection, and a redirect to a URL outside
its scope. The plain, well-formed answer and the plain failures (refused,
unresolvable, TLS refused, closed before the headers, a timeout) it words itself.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import zlib
from collections.abc import Mapping
from typing import cast

from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from pymon.checks.base import CheckContext, ip_literal
from pymon.checks.tls import ssl_reason

__all__ = ["REDIRECTS", "Failed", "Handover", "Http1Client", "Reply", "unreachable"]

REDIRECTS = frozenset({301, 302, 303, 307, 308})
"""The statuses aiohttp follows (and the lean client with it)."""

_MAX_REDIRECTS = 10  # aiohttp's default: the 10th redirect response fails the request
_MAX_LINE = 8190  # aiohttp's max_line_size and max_field_size
_MAX_HEADERS = 128  # aiohttp's max_headers
_NAME_TTL = 10.0  # aiohttp's ttl_dns_cache
_STATUS_LINE = re.compile(r"HTTP/1\.[01] (\d{3})(?: (.*))?")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_ACCEPT = {"Accept": "*/*", "Accept-Encoding": "gzip, deflate"}


class Handover(Exception):
    """Something the lean client leaves to aiohttp; the check starts over with it."""


class Failed(Exception):
    """No usable answer; the text is the check's message, worded as for aiohttp's errors."""


class _Unanswered(Failed):
    """The connection ended before a response head: aiohttp asks once more, and so do we."""


def unreachable(host: str, port: int | None, exc: OSError) -> str:
    """Why connecting to ``host`` port ``port`` failed, TLS included, in the check's words."""
    where = f"({host} port {port})"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verify failed: {exc.verify_message.rstrip('.')} {where}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {ssl_reason(exc)} {where}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused {where}"
    return f"cannot connect: {exc.strerror or exc} {where}"


class Reply:
    """A response whose head has arrived; its body arrives on its own, up to the limit."""

    __slots__ = ("_exchange", "headers", "peer_cert", "reason", "redirects", "status", "url")

    def __init__(self, exchange: _Exchange, url: URL, redirects: int) -> None:
        self._exchange = exchange
        self.status = exchange.status
        self.reason = exchange.reason
        self.headers = CIMultiDictProxy(exchange.headers)
        self.url = url
        self.redirects = redirects
        self.peer_cert = exchange.peer_cert

    @property
    def charset(self) -> str | None:
        """The ``charset`` parameter of the Content-Type header, if any."""
        for param in self.headers.get("Content-Type", "").split(";")[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset":
                return value.strip().strip('"') or None
        return None

    async def read_at_most(self, limit: int) -> tuple[bytes, bool]:
        """The body, at most ``limit`` bytes (the client's limit), and whether more may follow."""
        return await self._exchange.body

    def close(self) -> None:
        """Drop the connection, whatever is still coming."""
        self._exchange.close()


class _Exchange(asyncio.Protocol):
    """One request and its response on one connection.

    ``head`` resolves once a final (not 1xx) response head is in; ``body`` once the
    body is complete or ``limit`` decoded bytes of it are (then the connection is
    dropped). Either fails with Handover or Failed.
    """

    def __init__(self, request: bytes, head_only: bool, limit: int) -> None:
        loop = asyncio.get_running_loop()
        self.head: asyncio.Future[None] = loop.create_future()
        self.body: asyncio.Future[tuple[bytes, bool]] = loop.create_future()
        self.status = 0
        self.reason: str | None = None
        self.headers: CIMultiDict[str] = CIMultiDict()
        self.peer_cert: bytes | None = None
        self._request = request
        self._head_only = head_only
        self._limit = limit
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        # Framing once the head is in: bytes still to come (Content-Length), -1 for
        # until the close, -2 for chunked (then _chunk is what the next bytes are).
        self._left: int | None = None
        self._chunk = 0  # chunked: >0 data bytes left, 0 a size line, -1 data's CRLF, -2 trailers
        self._inflate: zlib._Decompress | None = None
        self._encoding = ""
        self._parts: list[bytes] = []
        self._size = 0
        self._closed = False

    # -- the transport's side ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, hence the cast.
        self._transport = cast(asyncio.Transport, transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.peer_cert = ssl_object.getpeercert(binary_form=True)
        self._transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        try:
            if self._left is None:
                self._buf += data
                self._read_head()
            else:
                self._feed(data)
            if not self.body.done() and self.head.done() and self._size >= self._limit:
                # The limit reached and the message not complete: aiohttp's reader
                # stops there too, and reports more to come.
                self._finish(truncated=True)
        except (Handover, Failed) as exc:
            self._fail(exc)

    def eof_received(self) -> bool | None:
        self._ended(None)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended(exc)

    def close(self) -> None:
        """Drop the connection now; what nobody will read any more is forgotten."""
        self._closed = True
        for future in (self.head, self.body):
            if not future.done():
                future.cancel()
            elif not future.cancelled():
                future.exception()  # seen: no "never retrieved" warning
        if self._transport is not None:
            self._transport.abort()

    # -- the response -----------------------------------------------------------------

    def _read_head(self) -> None:
        while self._left is None:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if b"\n\n" in self._buf or len(self._buf) > _MAX_HEADERS * _MAX_LINE:
                    raise Handover("bare LF line ends or an oversized head")
                return
            head = bytes(self._buf[:end])
            del self._buf[: end + 4]
            self._parse_head(head)
        rest = bytes(self._buf)
        self._buf.clear()
        self.head.set_result(None)
        if self._left == 0 and rest:
            raise Handover("bytes after a response without a body")
        if self._limit == 0 or self._left == 0:
            self._finish(truncated=self._left != 0)
        elif rest:
            self._feed(rest)

    def _parse_head(self, head: bytes) -> None:
        """Parse one response head; leaves ``_left`` None after a 1xx, to read the next."""
        lines = head.decode("latin-1").split("\r\n")
        breaks = len(lines) - 1
        if not head.isascii() or head.count(b"\r") != breaks or head.count(b"\n") != breaks:
            raise Handover("a head that is not ASCII, or has a bare CR or LF")
        status = _STATUS_LINE.fullmatch(lines[0])
        if status is None or len(lines) > _MAX_HEADERS + 1:
            raise Handover("a status line or header count aiohttp words itself")
        code = int(status[1])
        headers: CIMultiDict[str] = CIMultiDict()
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not _TOKEN.fullmatch(name) or len(line) > _MAX_LINE:
                raise Handover("a header line aiohttp words itself")
            headers.add(name, value.strip(" \t"))
        if 100 <= code < 200 and code != 101:
            return
        self.status, self.reason, self.headers = code, status[2], headers
        self._left = self._framing(code, headers)

    def _framing(self, code: int, headers: CIMultiDict[str]) -> int:
        if code == 101:
            raise Handover("a protocol switch")
        encoding = headers.get("Content-Encoding", "").lower()
        if (
            encoding not in ("", "gzip", "deflate")
            or len(headers.getall("Content-Encoding", ())) > 1
        ):
            raise Handover("a content encoding other than gzip or deflate")
        self._encoding = encoding
        lengths = headers.getall("Content-Length", ())
        chunked = headers.getall("Transfer-Encoding", ())
        if len(lengths) > 1 or (lengths and chunked) or (lengths and not lengths[0].isdigit()):
            raise Handover("a body length aiohttp words itself")
        if self._head_only or code in (204, 304):
            return 0
        if chunked:
            if len(chunked) > 1 or chunked[0].lower() != "chunked":
                raise Handover("a transfer coding other than chunked")
            return -2
        return int(lengths[0]) if lengths else -1

    def _feed(self, data: bytes) -> None:
        """Take body bytes as they arrive, by the response's framing."""
        if self.body.done():
            return
        if self._left == -2:
            self._buf += data
            self._dechunk()
        elif self._left == -1:
            self._take(data)
        else:
            assert self._left is not None
            data = data[: self._left]
            self._left -= len(data)
            self._take(data)
            if self._left == 0 and not self.body.done():
                self._complete()

    def _dechunk(self) -> None:
        buf = self._buf
        while buf and not self.body.done():
            if self._chunk > 0:
                data = bytes(buf[: self._chunk])
                del buf[: len(data)]
                self._chunk -= len(data)
                if self._chunk == 0:
                    self._chunk = -1
                self._take(data)
                continue
            end = buf.find(b"\r\n")
            if end < 0:
                if len(buf) > _MAX_LINE:
                    raise Handover("an oversized chunk line")
                return
            line = bytes(buf[:end])
            del buf[: end + 2]
            if self._chunk == -1:  # the CRLF after a chunk's data
                if line:
                    raise Handover("chunk data longer than its size")
                self._chunk = 0
            elif self._chunk == -2:  # trailers, until an empty line
                if not line:
                    self._complete()
            else:
                size = _CHUNK_SIZE.fullmatch(line.split(b";", 1)[0])
                if size is None:
                    raise Handover("a chunk size line aiohttp words itself")
                self._chunk = int(size[0], 16) or -2

    def _take(self, data: bytes) -> None:
        """Keep decoded body bytes up to the limit; past it, stop reading."""
        if self._encoding:
            data = self._inflated(data)
        room = self._limit - self._size
        if len(data) >= room:
            self._parts.append(data[:room])
            self._size = self._limit
            if len(data) > room:
                self._finish(truncated=True)
            return
        self._parts.append(data)
        self._size += len(data)

    def _inflated(self, data: bytes) -> bytes:
        if self._inflate is None:
            if not data:
                return data
            # As aiohttp: a "deflate" body without the zlib header is raw deflate.
            raw = self._encoding == "deflate" and data[0] & 0x0F != 8
            self._inflate = zlib.decompressobj(
                -15 if raw else 16 + 15 if self._encoding == "gzip" else 15
            )
        try:
            # One byte past the room is enough to know the body goes on.
            return self._inflate.decompress(data, self._limit - self._size + 1)
        except zlib.error:
            raise Handover("a body that does not decode") from None

    def _complete(self) -> None:
        """The whole message is in."""
        if self._inflate is not None and not self._inflate.eof:
            raise Handover("a compressed body that ends early")
        self._finish(truncated=False)

    def _finish(self, truncated: bool) -> None:
        # The check drops the connection when it is done with the reply (close).
        self.body.set_result((b"".join(self._parts), truncated))

    def _ended(self, exc: Exception | None) -> None:
        if self._closed:
            return
        if not self.head.done():
            if exc is not None:
                self._fail(Handover(f"the connection broke: {exc}"))
            else:
                self._fail(_Unanswered("server closed the connection without a complete response"))
        elif not self.body.done():
            if exc is None and self._left == -1:
                self._complete()
            else:
                self._fail(Handover("the body ended early"))

    def _fail(self, exc: Exception) -> None:
        for future in (self.head, self.body):
            if not future.done():
                future.set_exception(exc)
                break
        if self._transport is not None:
            self._transport.abort()


class Http1Client:
    """Makes lean requests with the settings of the aiohttp session it stands beside.

    ``headers`` are the session's default headers (the User-Agent), ``verifying``
    the context a verified request trusts. Names resolve through the check's
    resolver, each answer kept for 10 s as aiohttp's connector keeps it.
    """

    def __init__(self, headers: Mapping[str, str], verifying: ssl.SSLContext) -> None:
        self.headers = dict(headers)
        self.verifying = verifying
        self._names: dict[str, tuple[float, list[str]]] = {}

    async def get(
        self,
        url: URL,
        method: str,
        headers: Mapping[str, str],
        tls: ssl.SSLContext,
        limit: int,
        follow: bool,
        ctx: CheckContext,
    ) -> Reply:
        """The (final) response to ``method`` ``url``; raises Failed or Handover."""
        sent: CIMultiDict[str] = CIMultiDict(self.headers)
        sent.update(headers)
        redirects = 0
        retry = True  # once per request, redirects included, as aiohttp retries
        while True:
            try:
                exchange = await self._exchange(url, method, sent, tls, limit, ctx)
            except _Unanswered:
                if not retry:
                    raise
                retry = False
                continue
            if exchange.status not in REDIRECTS or not follow:
                return Reply(exchange, url.with_fragment(None), redirects)
            redirects += 1
            location = exchange.headers.get("Location") or exchange.headers.get("URI")
            if location is None and redirects < _MAX_REDIRECTS:
                # As aiohttp: a redirect with no place to go is the answer, and counted.
                return Reply(exchange, url.with_fragment(None), redirects)
            exchange.close()
            if location is None or redirects >= _MAX_REDIRECTS:
                raise Failed(f"too many redirects ({redirects} followed)")
            target = _redirect_target(url, location)
            if target.origin() != url.origin():
                sent.popall("Authorization", None)
            url = target

    async def _exchange(
        self,
        url: URL,
        method: str,
        headers: CIMultiDict[str],
        tls: ssl.SSLContext,
        limit: int,
        ctx: CheckContext,
    ) -> _Exchange:
        host = url.raw_host or ""
        port = url.port or 80
        request = _request(method, url, headers)
        secure = tls if url.scheme == "https" else None
        addresses = await self._addresses(host, ctx)
        error: OSError = OSError("no addresses")
        for address in addresses:
            exchange = _Exchange(request, method == "HEAD", limit)
            try:
                await _connect(exchange, address, port, secure, host)
            except ssl.SSLError as exc:
                raise Failed(unreachable(host, port, exc)) from None
            except OSError as exc:
                error = exc
                continue
            ctx.stage = "waiting for response headers"
            try:
                await exchange.head
            except BaseException:
                exchange.close()
                raise
            if exchange.status in REDIRECTS:
                # When redirects are followed the next hop's connect comes next.
                ctx.stage = "following a redirect"
            return exchange
        raise Failed(unreachable(host, port, error))

    async def _addresses(self, host: str, ctx: CheckContext) -> list[str]:
        literal = ip_literal(host)
        if literal is not None:
            return [literal]
        now = ctx.clock.monotonic()
        known = self._names.get(host)
        if known is not None and known[0] > now:
            return known[1]
        try:
            addresses = await ctx.resolver.resolve(host)
        except OSError as exc:
            raise Failed(f"cannot resolve {host}: {exc.strerror or exc}") from None
        if addresses:
            self._names[host] = (now + _NAME_TTL, addresses)
        return addresses


async def _connect(
    exchange: _Exchange, address: str, port: int, tls: ssl.SSLContext | None, host: str
) -> None:
    await asyncio.get_running_loop().create_connection(
        lambda: exchange, address, port, ssl=tls, server_hostname=host if tls else None
    )


def _request(method: str, url: URL, headers: CIMultiDict[str]) -> bytes:
    lines = [f"{method} {url.raw_path_qs} HTTP/1.1", f"Host: {url.host_port_subcomponent}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"{name}: {value}" for name, value in _ACCEPT.items() if name not in headers]
    lines.append("Connection: close\r\n\r\n")
    return "\r\n".join(lines).encode()


def _redirect_target(url: URL, location: str) -> URL:
    """Where a redirect leads, joined as aiohttp joins it; Handover outside the lean scope."""
    try:
        target = URL(location)
        if not target.scheme:
            target = url.join(target)
    except ValueError:
        raise Handover("a redirect to something that is not a URL") from None
    if target.scheme not in ("http", "https") or not target.raw_host or target.user is not None:
        raise Handover("a redirect outside the lean client's scope")
    return target
