"""An HTTP receiver of notices: what the webhook, PagerDuty and Opsgenie channels share.

One :class:`Endpoint` per channel holds one aiohttp session between sends. A request
never follows a redirect (it would resend the notice, and maybe a key or a signature,
somewhere not configured), reads at most :data:`MAX_RESPONSE` bytes of an answer,
and is bounded as a whole by the channel's timeout. Every failure is a
:class:`DeliveryError` whose text starts with the channel's kind and where it posts
(``pagerduty https://events.pagerduty.com/v2/enqueue: HTTP 429: ...``):

- 2xx delivers;
- 3xx fails, naming where it pointed (301 and 308 for good, the others retried);
- 4xx fails for good, except 408, 425 and 429;
- 408, 425, 429, 5xx, connection errors and timeouts are retried by the outbox,
  not sooner than the answer's ``Retry-After`` (seconds or an HTTP date).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Final

import aiohttp
from yarl import URL

import pymon
from pymon.notify.base import DeliveryError
from pymon.text import one_line

__all__ = ["MAX_RESPONSE", "Endpoint", "display_url", "parse_retry_after"]

log = logging.getLogger("pymon.notify")

#: Bytes of a response body read at most (the rest is dropped with the connection).
MAX_RESPONSE: Final = 64 * 1024
# Characters of the response body quoted in an error.
_MAX_QUOTE = 200
_RETRYABLE_4XX = frozenset({408, 425, 429})
_PERMANENT_REDIRECTS = frozenset({301, 308})
# A Retry-After further out than this is read as this: a receiver asking for days is
# broken, and the outbox caps the wait at delivery.max_backoff anyway.
_RETRY_AFTER_MAX = 86400.0


class Endpoint:
    """Where one channel POSTs: one session, bounded reads, no redirects, worded errors.

    ``kind`` and the URL (without credentials or query) start every error text.
    """

    def __init__(self, kind: str, url: str, timeout: float, *, verify_tls: bool = True) -> None:
        self.kind = kind
        self.url = url
        self.timeout = timeout
        self.verify_tls = verify_tls
        self.where = display_url(url)
        self._session: aiohttp.ClientSession | None = None

    async def post(self, body: bytes, headers: Mapping[str, str], *, url: str | None = None) -> int:
        """POST ``body`` (to ``url``, by default the endpoint's own); returns the 2xx status.

        Raises :class:`DeliveryError` for anything else, with ``permanent`` and
        ``retry_after`` set as the module docstring says.
        """
        target = url or self.url
        where = self.where if url is None else display_url(url)
        try:
            return await self._post(target, where, body, headers)
        except TimeoutError:
            raise DeliveryError(
                f"{self.kind} {where}: no answer within {self.timeout:g}s"
            ) from None
        except aiohttp.InvalidURL as exc:
            raise DeliveryError(
                f"{self.kind} {where}: invalid URL ({exc})", permanent=True
            ) from None
        except aiohttp.ClientError as exc:
            raise DeliveryError(f"{self.kind} {where}: {_reason(exc)}") from None

    async def close(self) -> None:
        """Close the HTTP session and its connections."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _post(self, url: str, where: str, body: bytes, headers: Mapping[str, str]) -> int:
        # aiohttp's total timeout runs from connecting to the end of the body read.
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with self._client().post(
            url,
            data=body,
            headers=dict(headers),
            allow_redirects=False,
            timeout=timeout,
            ssl=self.verify_tls,
        ) as response:
            status = response.status
            if 200 <= status < 300:
                await _drain(response)
                return status
            if 300 <= status < 400:
                target = response.headers.get("Location")
                shown = one_line(display_url(target), _MAX_QUOTE) if target else "no Location given"
                raise DeliveryError(
                    f"{self.kind} {where}: HTTP {status}: redirected to {shown}"
                    " (redirects are not followed; configure the final URL)",
                    permanent=status in _PERMANENT_REDIRECTS,
                )
            text = one_line((await _quote(response)).decode("utf-8", "replace"), _MAX_QUOTE)
            text = text or one_line(response.reason or "", _MAX_QUOTE)
            raise DeliveryError(
                f"{self.kind} {where}: HTTP {status}" + (f": {text}" if text else ""),
                permanent=400 <= status < 500 and status not in _RETRYABLE_4XX,
                retry_after=parse_retry_after(response.headers.get("Retry-After"), time.time()),
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


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from ``now`` for a ``Retry-After`` value (delta-seconds or an
    HTTP date), None when absent or unreadable; never negative, at most a day."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None  # an HTTP date is always GMT; one without a zone is not one
        seconds = when.timestamp() - now
    return min(max(seconds, 0.0), _RETRY_AFTER_MAX)


def display_url(url: str) -> str:
    """``url`` as fit to show: no user, password, query or fragment (they may hold secrets)."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return "<unparseable URL>"
    if not parsed.is_absolute():
        return one_line(parsed.path, _MAX_QUOTE)
    return str(parsed.with_user(None).with_query(None).with_fragment(None))


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
        log.debug("an endpoint answered 2xx, then its body failed: %s", _reason(exc))


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
