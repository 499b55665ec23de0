"""The ``webhook`` channel: POSTs each notice as JSON to a URL, optionally signed.

A request carries the payload of ``payload.py`` and these headers:

- ``X-Pymon-Delivery``: the delivery id (``<notice key>/<channel>``), the same on
  every retry, so a receiver drops what it has already seen;
- ``X-Pymon-Attempt``: 1 for the first try of this delivery, then 2, 3...;
- ``X-Pymon-Timestamp``: when this request was made, Unix seconds;
- ``X-Pymon-Signature``: with a ``secret``, ``sha256=<hex>``, the HMAC-SHA256 of
  the exact body bytes under the secret (see :func:`verify`).

Any 2xx delivers. A redirect is not followed (it would resend the notice, and
maybe its signature, somewhere not configured): it fails, naming where it pointed.
4xx answers are permanent failures except 408, 425 and 429, which (like 5xx,
connection errors and timeouts) are retried by the outbox.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import socket
import time
from typing import Final

import aiohttp
from yarl import URL

import pymon
from pymon.config.schema import WebhookChannel
from pymon.model import Notice
from pymon.notify.base import DeliveryError, NoticeContext
from pymon.notify.payload import encode_payload, notice_payload
from pymon.text import one_line

__all__ = ["MAX_RESPONSE", "WebhookSender", "sign", "verify"]

log = logging.getLogger("pymon.notify")

#: Bytes of a response body read at most (the rest is dropped with the connection).
MAX_RESPONSE: Final = 64 * 1024
# Characters of the response body quoted in an error.
_MAX_QUOTE = 200
_RETRYABLE_4XX = frozenset({408, 425, 429})
_PERMANENT_REDIRECTS = frozenset({301, 308})
# Headers that say what the body is and how it is framed; pymon sets or frames them.
_RESERVED = frozenset({"content-type", "content-length", "transfer-encoding"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def sign(secret: str, body: bytes) -> str:
    """The ``X-Pymon-Signature`` value of ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` (an ``X-Pymon-Signature`` value) signs ``body`` under ``secret``.

    The comparison takes the same time wherever the first difference is.
    """
    if header is None:
        return False
    given = header.strip().lower().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(sign(secret, body).encode(), given)


class WebhookSender:
    """Delivers notices to one webhook; holds one HTTP session between sends."""

    def __init__(self, name: str, config: WebhookChannel) -> None:
        self.name = name
        self.config = config
        self._where = _display(config.url)
        self._session: aiohttp.ClientSession | None = None
        self._headers, self._header_problem = self._own_headers(config.headers)

    async def send(self, notice: Notice, ctx: NoticeContext) -> None:
        """POST ``notice``; return on a 2xx answer, raise :class:`DeliveryError` otherwise."""
        if self._header_problem is not None:
            raise DeliveryError(f"webhook {self._where}: {self._header_problem}", permanent=True)
        payload = notice_payload(notice, ctx, self.name)
        body = encode_payload(payload)
        headers = {
            **self._headers,
            "Content-Type": "application/json",
            "X-Pymon-Delivery": payload["id"],
            "X-Pymon-Attempt": str(ctx.attempt),
            "X-Pymon-Timestamp": str(int(time.time())),
        }
        if self.config.secret is not None:
            headers["X-Pymon-Signature"] = sign(self.config.secret, body)
        try:
            await self._post(body, headers)
        except TimeoutError:
            raise DeliveryError(
                f"webhook {self._where}: no answer within {self.config.timeout:g}s"
            ) from None
        except aiohttp.InvalidURL as exc:
            raise DeliveryError(
                f"webhook {self._where}: invalid URL ({exc})", permanent=True
            ) from None
        except aiohttp.ClientError as exc:
            raise DeliveryError(f"webhook {self._where}: {_reason(exc)}") from None
        log.debug("webhook %s took notice %s (attempt %d)", self._where, notice.key, ctx.attempt)

    async def close(self) -> None:
        """Close the HTTP session and its connections."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _post(self, body: bytes, headers: dict[str, str]) -> None:
        # aiohttp's total timeout runs from connecting to the end of the body read.
        timeout = aiohttp.ClientTimeout(total=self.config.timeout)
        async with self._client().post(
            self.config.url,
            data=body,
            headers=headers,
            allow_redirects=False,
            timeout=timeout,
            ssl=self.config.verify_tls,
        ) as response:
            if 200 <= response.status < 300:
                await _drain(response)
                return
            if 300 <= response.status < 400:
                target = response.headers.get("Location")
                where = one_line(_display(target), _MAX_QUOTE) if target else "no Location given"
                raise DeliveryError(
                    f"webhook {self._where}: HTTP {response.status}: redirected to {where}"
                    " (redirects are not followed; configure the final URL)",
                    permanent=response.status in _PERMANENT_REDIRECTS,
                )
            text = one_line((await _quote(response)).decode("utf-8", "replace"), _MAX_QUOTE)
            text = text or one_line(response.reason or "", _MAX_QUOTE)
            raise DeliveryError(
                f"webhook {self._where}: HTTP {response.status}" + (f": {text}" if text else ""),
                permanent=400 <= response.status < 500 and response.status not in _RETRYABLE_4XX,
            )

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": f"pymon/{pymon.__version__}", "Accept-Encoding": "identity"},
                # Bodies are only ever quoted in errors: never inflate what a server
                # compressed anyway (a small answer could inflate to gigabytes).
                auto_decompress=False,
                # A receiver's cookies must not travel with later notices.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    def _own_headers(self, configured: dict[str, str]) -> tuple[dict[str, str], str | None]:
        """The configured headers pymon lets through, and what makes them unusable, if anything."""
        kept: dict[str, str] = {}
        for name, value in configured.items():
            if _TOKEN.fullmatch(name) is None:
                return {}, f"header name {name!r} is not a valid HTTP header name"
            if _BAD_VALUE.search(value):
                return {}, f"header {name} has a control character (line break?) in its value"
            lowered = name.lower()
            if lowered.startswith("x-pymon-") or lowered in _RESERVED:
                log.warning(
                    "webhook channel %s: header %s is pymon's own and is ignored", self.name, name
                )
                continue
            kept[name] = value
        return kept, None


async def _read(response: aiohttp.ClientResponse) -> bytes:
    """At most :data:`MAX_RESPONSE` bytes of the body."""
    data = bytearray()
    while len(data) < MAX_RESPONSE:
        chunk = await response.content.read(MAX_RESPONSE - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


async def _quote(response: aiohttp.ClientResponse) -> bytes:
    """As much of an error answer's body as arrives in time; its status is the verdict."""
    try:
        return await _read(response)
    except (aiohttp.ClientError, TimeoutError):
        return b""


async def _drain(response: aiohttp.ClientResponse) -> None:
    """Read a 2xx body (so the connection can be reused); the notice is delivered regardless."""
    try:
        await _read(response)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.debug("webhook answered 2xx, then its body failed: %s", _reason(exc))


def _display(url: str) -> str:
    """``url`` as fit to show: no user, password, query or fragment (they may hold secrets)."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return "<unparseable URL>"
    if not parsed.is_absolute():
        return one_line(parsed.path, _MAX_QUOTE)
    return str(parsed.with_user(None).with_query(None).with_fragment(None))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate not trusted: {one_line(str(exc.certificate_error), _MAX_QUOTE)}"
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"TLS failed: {one_line(str(exc), _MAX_QUOTE)}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if not isinstance(exc.os_error, socket.gaierror) and exc.os_error.errno:
            # asyncio words a refusal "Connect call failed"; say what the errno says.
            return f"cannot connect: {os.strerror(exc.os_error.errno).lower()}"
        return f"cannot connect: {one_line(exc.strerror or str(exc), _MAX_QUOTE)}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without an answer"
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return f"bad HTTP answer: {one_line(str(exc), _MAX_QUOTE)}"
    return one_line(str(exc), _MAX_QUOTE) or type(exc).__name__
