"""``http``: request a URL, judge the status code and the body."""

from __future__ import annotations

import codecs
import re
import ssl
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Literal
from urllib.parse import urlsplit

import aiohttp
from pydantic import Field, ValidationInfo, field_validator

from pymon import __version__
from pymon.checks import register
from pymon.checks.base import CheckContext
from pymon.config.ranges import parse_ranges
from pymon.config.schema import CheckSpec, MetricThresholds
from pymon.model import CheckResult, Status

__all__ = ["HTTP_STATUS", "HttpSpec", "check_http", "new_session"]

# The original pymon's status table; a code in no range is unknown.
HTTP_STATUS = MetricThresholds(
    ok=parse_ranges("100-101, 200-203, 300, 302-305"),
    warn=parse_ranges("204-206, 301, 401-403, 405-407, 411-416"),
    error=parse_ranges("400, 404, 408-410, 417, 500-505"),
)


# RFC 9110 token characters.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SSL_SOURCE = re.compile(r"\s*\(_ssl\.c:\d+\)$")


class HttpSpec(CheckSpec):
    """Keys of an ``http`` service."""

    url: str = Field(pattern=r"^https?://")
    method: Literal["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    # Before contains/not_contains: their validator reads it.
    regex: bool = False
    contains: list[str] = Field(default_factory=list)
    not_contains: list[str] = Field(default_factory=list)
    verify_tls: bool = True
    follow_redirects: bool = False
    max_body: int = Field(default=1_048_576, ge=0)

    @field_validator("url")
    @classmethod
    def _url_has_host(cls, url: str) -> str:
        if any(c.isspace() for c in url):
            raise ValueError("a URL cannot contain spaces or line breaks (write %20)")
        try:
            parts = urlsplit(url)
            # Reading .port is what validates it.
            host, _ = parts.hostname, parts.port
        except ValueError as exc:
            raise ValueError(f"not a valid URL: {exc}") from None
        if not host:
            raise ValueError("the URL names no host")
        return url

    @field_validator("headers")
    @classmethod
    def _headers_are_single_lines(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if any(c in value for c in "\r\n\0"):
                raise ValueError(f"header {name} has a line break or NUL in its value")
        return headers

    @field_validator("contains", "not_contains")
    @classmethod
    def _patterns_compile(cls, items: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("regex"):
            for i, item in enumerate(items):
                try:
                    re.compile(item)
                except re.error as exc:
                    raise ValueError(
                        f"item {i} ({item!r}) is not a valid regular expression: {exc}"
                    ) from None
        return items


_StageCallback = Callable[[aiohttp.ClientSession, SimpleNamespace, object], Awaitable[None]]


def _stage(stage: str) -> _StageCallback:
    async def set_stage(
        session: aiohttp.ClientSession, trace: SimpleNamespace, params: object
    ) -> None:
        if isinstance(trace.trace_request_ctx, CheckContext):
            trace.trace_request_ctx.stage = stage

    return set_stage


def new_session(ssl_context: ssl.SSLContext | None = None) -> aiohttp.ClientSession:
    """An aiohttp session made for http checks; the daemon shares one among all of them.

    Call it inside the running loop. Every request gets a fresh connection (a reused
    one would hide a server that no longer accepts new ones, and skew timings), no
    cookies carry over from one check to the next, the only time limit is the
    check's own, and the check's ``stage`` follows the request so a timeout says
    whether the target stalled connecting or answering. ``ssl_context`` replaces the
    system CA store for verified requests (tests trust their own CA with it).
    """
    trace = aiohttp.TraceConfig()
    trace.on_connection_create_start.append(_stage("connecting"))
    trace.on_request_headers_sent.append(_stage("waiting for response headers"))
    trace.on_request_redirect.append(_stage("following a redirect"))
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
        trace_configs=[trace],
    )


def _failure(exc: aiohttp.ClientError) -> str:
    """Why no usable answer came, in the operator's words."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert = exc.certificate_error
        reason = (
            cert.verify_message.rstrip(".")
            if isinstance(cert, ssl.SSLCertVerificationError)
            else cert
        )
        return f"TLS certificate verify failed: {reason} ({exc.host} port {exc.port})"
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        reason = _SSL_SOURCE.sub("", str(exc.os_error))
        return f"TLS handshake failed: {reason} ({exc.host} port {exc.port})"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve {exc.host}: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        reason = (
            "connection refused"
            if isinstance(os_error, ConnectionRefusedError)
            else f"cannot connect: {os_error.strerror or os_error}"
        )
        return f"{reason} ({exc.host} port {exc.port})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server closed the connection without a complete response"
    if isinstance(exc, aiohttp.TooManyRedirects):
        return f"too many redirects ({len(exc.history)} followed)"
    if isinstance(exc, aiohttp.ClientResponseError):
        # The client raises this when the response does not parse as HTTP.
        return f"invalid HTTP response: {' '.join(exc.message.split())}"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"response body broken: {exc}"
    return f"{type(exc).__name__}: {exc}"


async def _read_body(content: aiohttp.StreamReader, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body, and whether more may have followed."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), not content.at_eof()


def _decode(body: bytes, charset: str | None) -> str:
    try:
        codec = codecs.lookup(charset or "utf-8").name
    except LookupError:
        codec = "utf-8"
    return body.decode(codec, errors="replace")


def _text_problems(spec: HttpSpec, text: str) -> list[str]:
    """What is wrong with the body text: required items missing, forbidden ones present."""
    kind = "regex " if spec.regex else ""
    problems: list[str] = []
    for item in spec.contains:
        found = re.search(item, text) if spec.regex else item in text
        if not found:
            problems.append(f"body lacks {kind}{item!r}")
    for item in spec.not_contains:
        if spec.regex:
            match = re.search(item, text)
            if match is not None:
                problems.append(f"body has forbidden regex {item!r} (matched {match[0][:60]!r})")
        elif item in text:
            problems.append(f"body has forbidden {item!r}")
    return problems


@register("http", HttpSpec, {"status_code": HTTP_STATUS})
async def check_http(spec: HttpSpec, ctx: CheckContext) -> CheckResult:
    """Request ``url``; judge the status code and required/forbidden text in the body."""
    session = await ctx.http_session()
    ctx.stage = "connecting"
    t0 = ctx.clock.monotonic()
    metrics: dict[str, float] = {}
    try:
        async with session.request(
            spec.method,
            spec.url,
            headers=spec.headers,
            allow_redirects=spec.follow_redirects,
            # True keeps the session's verifying context; False skips verification.
            ssl=spec.verify_tls,
            trace_request_ctx=ctx,
        ) as resp:
            response_ms = (ctx.clock.monotonic() - t0) * 1000
            metrics["status_code"] = resp.status
            metrics["response_time_ms"] = round(response_ms, 3)
            ctx.stage = "reading body"
            body, truncated = await _read_body(resp.content, spec.max_body)
            if truncated:
                # Drop the connection rather than let the rest of the body be drained.
                resp.close()
            charset = resp.charset
    except aiohttp.ClientError as exc:
        return CheckResult(Status.FAILED, _failure(exc), metrics)
    metrics["body_bytes"] = len(body)
    size = f"{len(body)} bytes (cut at max_body)" if truncated else f"{len(body)} bytes"
    summary = f"HTTP {resp.status} {resp.reason or ''}".rstrip()
    if resp.history:
        hops = len(resp.history)
        summary += f" from {resp.url} after {hops} redirect{'s' if hops > 1 else ''}"
    summary += f", {size} in {response_ms:.0f} ms"
    if spec.contains or spec.not_contains:
        problems = _text_problems(spec, _decode(body, charset))
        if problems:
            only = f"; only the first {len(body)} bytes were read" if truncated else ""
            return CheckResult(Status.ERROR, f"{'; '.join(problems)} ({summary}{only})", metrics)
    return CheckResult(Status.OK, summary, metrics)
