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
connection errors and timeouts) are retried by the outbox, not sooner than the
answer's ``Retry-After``. The HTTP side is :mod:`pymon.notify.endpoint`'s.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time

from pymon.config.schema import WebhookChannel
from pymon.model import Notice
from pymon.notify.base import DeliveryError, NoticeContext
from pymon.notify.endpoint import Endpoint
from pymon.notify.payload import encode_payload, notice_payload

__all__ = ["WebhookSender", "sign", "verify"]

log = logging.getLogger("pymon.notify")

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
        self._endpoint = Endpoint(
            "webhook", config.url, config.timeout, verify_tls=config.verify_tls
        )
        self._headers, self._header_problem = self._own_headers(config.headers)

    async def send(self, notice: Notice, ctx: NoticeContext) -> None:
        """POST ``notice``; return on a 2xx answer, raise :class:`DeliveryError` otherwise."""
        if self._header_problem is not None:
            raise DeliveryError(
                f"webhook {self._endpoint.where}: {self._header_problem}", permanent=True
            )
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
        await self._endpoint.post(body, headers)
        log.debug(
            "webhook %s took notice %s (attempt %d)", self._endpoint.where, notice.key, ctx.attempt
        )

    async def close(self) -> None:
        """Close the HTTP session and its connections."""
        await self._endpoint.close()

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
