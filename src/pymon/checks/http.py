"""``http``: request a URL; judge the status code, headers and body; report certificate expiry."""

from __future__ import annotations

import base64
import codecs
import contextlib
import functools
import json
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol, Self
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDictProxy
from pydantic import (
    Field,
    JsonValue,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from yarl import URL

from pymon.checks._http1 import Failed, Handover, Http1Client, unreachable
from pymon.checks._session import (
    HttpSessions,
    Response,
    current_check,
    lean_client,
    new_session,
)
from pymon.checks.base import CheckContext
from pymon.checks.spec import CheckSpec, MetricThresholds
from pymon.checks.tls import UNVERIFIED, TrustSpec, read_certificate, verifying_context
from pymon.model import CheckResult, Status
from pymon.ranges import parse_ranges

__all__ = [
    "HTTP_STATUS",
    "BasicAuth",
    "HeaderRegex",
    "HttpSessions",
    "HttpSpec",
    "JsonExpectation",
    "check_http",
    "new_session",
]

# The original pymon's status table; a code in no range is unknown.
HTTP_STATUS = MetricThresholds(
    ok=parse_ranges("100-101, 200-203, 300, 302-305"),
    warn=parse_ranges("204-206, 301, 401-403, 405-407, 411-416"),
    error=parse_ranges("400, 404, 408-410, 417, 500-505"),
)


# RFC 9110 token characters.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_INDEX = re.compile(r"-?\d+")
_SPACE = re.compile(r"\s")  # what str.isspace calls space


def _header_name(name: str) -> str:
    if not _HEADER_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid header name")
    return name


def _compiles(pattern: str, what: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{what} ({pattern!r}) is not a valid regular expression: {exc}") from None
    return pattern


class BasicAuth(CheckSpec):
    """``basic_auth``: credentials sent as HTTP Basic authentication."""

    username: str
    # SecretStr: shown as ********** wherever the spec is printed or logged.
    password: SecretStr

    @field_validator("username")
    @classmethod
    def _username_fits(cls, username: str) -> str:
        # RFC 7617: the user-id cannot contain a colon.
        if ":" in username or any(c in username for c in "\r\n\0"):
            raise ValueError("a Basic auth username cannot contain ':', a line break or NUL")
        return username

    def header(self) -> str:
        """The ``Authorization`` header value, credentials in UTF-8 (RFC 7617)."""
        pair = f"{self.username}:{self.password.get_secret_value()}".encode()
        return f"Basic {base64.b64encode(pair).decode('ascii')}"


class HeaderRegex(CheckSpec):
    """An ``expect_header`` value given as ``{regex: PATTERN}``, searched in the header."""

    regex: str

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, regex: str) -> str:
        return _compiles(regex, "regex")


class JsonExpectation(CheckSpec):
    """One ``expect_json`` item: a path into the JSON body and one condition on it.

    ``path`` is dot-separated: object keys, and list indexes (``-1`` is the last item).
    """

    path: str = Field(min_length=1)
    equals: JsonValue = None
    contains: JsonValue = None
    exists: bool | None = None

    @field_validator("path")
    @classmethod
    def _no_empty_part(cls, path: str) -> str:
        if "" in path.split("."):
            raise ValueError(f"path {path!r} has an empty part (write e.g. items.0.name)")
        return path

    @model_validator(mode="after")
    def _one_condition(self) -> Self:
        given = {"equals", "contains", "exists"} & self.model_fields_set
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of equals, contains or exists for path {self.path!r}"
                + (f" (got {', '.join(sorted(given))})" if given else "")
            )
        if "contains" in given and self.contains is None:
            raise ValueError("contains: null is no value to look for")
        if "exists" in given and self.exists is None:
            raise ValueError("exists must be true or false")
        return self


class HttpSpec(TrustSpec):
    """Keys of an ``http`` service."""

    url: str = Field(pattern=r"^https?://")
    method: Literal["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    basic_auth: BasicAuth | None = None
    body: str | None = None
    json_body: JsonValue = None
    # Before contains/not_contains: their validator reads it.
    regex: bool = False
    contains: list[str] = Field(default_factory=list)
    not_contains: list[str] = Field(default_factory=list)
    expect_header: dict[str, str | HeaderRegex] = Field(default_factory=dict)
    expect_json: list[JsonExpectation] = Field(default_factory=list)
    follow_redirects: bool = False
    max_body: int = Field(default=1_048_576, ge=0)

    @field_validator("url")
    @classmethod
    def _url_has_host(cls, url: str) -> str:
        if _SPACE.search(url):
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
            _header_name(name)
            if any(c in value for c in "\r\n\0"):
                raise ValueError(f"header {name} has a line break or NUL in its value")
        return headers

    @field_validator("expect_header")
    @classmethod
    def _expected_header_names(
        cls, expected: dict[str, str | HeaderRegex]
    ) -> dict[str, str | HeaderRegex]:
        for name in expected:
            _header_name(name)
        return expected

    @field_validator("contains", "not_contains", "expect_json", mode="before")
    @classmethod
    def _one_item_is_a_list(cls, value: object) -> object:
        # ``pymon check http --contains ok`` gives one string, not a list of one.
        return [value] if isinstance(value, str | dict) else value

    @field_validator("contains", "not_contains")
    @classmethod
    def _patterns_compile(cls, items: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("regex"):
            for i, item in enumerate(items):
                _compiles(item, f"item {i}")
        return items

    @model_validator(mode="after")
    def _request_fits_together(self) -> Self:
        if self.body is not None and self.json_body is not None:
            raise ValueError("give body or json_body, not both")
        if (self.body is not None or self.json_body is not None) and self.method in ("GET", "HEAD"):
            raise ValueError(
                f"a {self.method} request sends no body; set method (POST, PUT, PATCH...)"
            )
        if self.basic_auth is not None:
            if any(name.lower() == "authorization" for name in self.headers):
                raise ValueError("give basic_auth or an Authorization header, not both")
            if urlsplit(self.url).username is not None:
                raise ValueError("give basic_auth or credentials in the URL, not both")
        return self


@functools.lru_cache(maxsize=65_536)
def _parsed(url: str) -> URL:
    """``url`` parsed once per service, not on every run.

    yarl's own cache holds 256 URLs, fewer than a daemon's http services, so
    without this every request parsed its URL again (and the parsed URL keeps
    its host, port and path worked out for aiohttp's next use).
    """
    return URL(url)


def _failure(exc: aiohttp.ClientError) -> str:
    """Why no usable answer came, in the operator's words."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert = exc.certificate_error
        if isinstance(cert, OSError):
            return unreachable(exc.host, exc.port, cert)
        return f"TLS certificate verify failed: {cert} ({exc.host} port {exc.port})"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve {exc.host}: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return unreachable(exc.host, exc.port, exc.os_error)
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


def _show(value: object, limit: int = 80) -> str:
    """A JSON value as JSON text, cut to ``limit`` characters."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else f"{text[:limit]}..."


def _header_problems(
    expected: dict[str, str | HeaderRegex], headers: CIMultiDictProxy[str]
) -> list[str]:
    """Expected headers that are missing or have another value (any of a repeated one may match)."""
    problems: list[str] = []
    for name, want in expected.items():
        values = headers.getall(name, [])
        if not values:
            problems.append(f"header {name} missing")
            continue
        got = " / ".join(repr(v[:80]) for v in values)
        if isinstance(want, HeaderRegex):
            if not any(re.search(want.regex, v) for v in values):
                problems.append(f"header {name} is {got}, expected to match regex {want.regex!r}")
        elif want not in values:
            problems.append(f"header {name} is {got}, expected {want!r}")
    return problems


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool) or value is None:
        return _show(value)
    return "a number"


@dataclass(frozen=True, slots=True)
class _Absent:
    """No value at a JSON path, and where the walk stopped."""

    why: str


def _lookup(document: object, path: str) -> object:
    """The value at ``path`` (keys and list indexes, dot-separated), or an _Absent."""
    node = document
    parts = path.split(".")
    for n, part in enumerate(parts):
        walked = ".".join(parts[:n]) or "the document"
        if isinstance(node, dict):
            if part not in node:
                return _Absent(f"{walked} has no key {part!r}")
            node = node[part]
        elif (
            isinstance(node, list)
            and _INDEX.fullmatch(part)
            and -len(node) <= int(part) < len(node)
        ):
            node = node[int(part)]
        else:
            return _Absent(f"{walked} is {_kind(node)}")
    return node


def _same(a: object, b: object) -> bool:
    """JSON equality: ``1 == 1.0``, but ``true`` is not ``1`` and ``"1"`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def _json_problem(item: JsonExpectation, document: object) -> str | None:
    """What is wrong at ``item.path``, or None."""
    path = item.path
    value = _lookup(document, path)
    if isinstance(value, _Absent):
        return None if item.exists is False else f"JSON {path} missing ({value.why})"
    if item.exists is not None:
        return None if item.exists else f"JSON {path} present ({_show(value)}), expected absent"
    if "equals" in item.model_fields_set:
        if _same(value, item.equals):
            return None
        return f"JSON {path} is {_show(value)}, expected {_show(item.equals)}"
    wanted = item.contains
    if isinstance(value, list):
        found = any(_same(element, wanted) for element in value)
    elif isinstance(value, str) and isinstance(wanted, str):
        found = wanted in value
    else:
        return f"JSON {path} is {_kind(value)}, which cannot contain {_show(wanted)}"
    if found:
        return None
    return f"JSON {path} is {_show(value)}, expected it to contain {_show(wanted)}"


def _json_problems(expectations: list[JsonExpectation], text: str) -> list[str]:
    """Each ``expect_json`` item the body fails; one problem if the body is not JSON at all."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        return [f"body is not JSON: {exc}"]
    except RecursionError:
        return ["body is not JSON pymon can read: nested too deeply"]
    return [p for item in expectations if (p := _json_problem(item, document)) is not None]


def _problems(
    spec: HttpSpec, headers: CIMultiDictProxy[str], body: bytes, charset: str | None
) -> list[str]:
    """What the response fails of ``expect_header``, ``(not_)contains`` and ``expect_json``."""
    problems = _header_problems(spec.expect_header, headers)
    if spec.contains or spec.not_contains or spec.expect_json:
        text = _decode(body, charset)
        problems += _text_problems(spec, text)
        if spec.expect_json:
            problems += _json_problems(spec.expect_json, text)
    return problems


class _Reply(Protocol):
    """A response whose head is in, from either client: aiohttp's (``_session.Response``)
    or the lean one (``_http1.Reply``)."""

    @property
    def status(self) -> int: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def headers(self) -> CIMultiDictProxy[str]: ...
    @property
    def url(self) -> URL: ...
    @property
    def redirects(self) -> int: ...
    @property
    def peer_cert(self) -> bytes | None: ...
    @property
    def charset(self) -> str | None: ...

    async def read_at_most(self, limit: int) -> tuple[bytes, bool]: ...

    def close(self) -> None: ...


# Request headers the lean client leaves to aiohttp: they change how the exchange runs.
_EXCHANGE_HEADERS = frozenset(
    {"connection", "accept-encoding", "host", "expect", "upgrade", "te", "transfer-encoding"}
)


def _lean(spec: HttpSpec, session: aiohttp.ClientSession) -> Http1Client | None:
    """The lean client, when the request is within its scope; None sends it through aiohttp.

    The one place that decides. In scope: a GET or HEAD (no request body) to an
    http or https URL without credentials in it, with headers that do not change
    the exchange itself (``Connection``, ``Accept-Encoding``, ``Host``, ``Expect``,
    ``Upgrade``, ``TE``, ``Transfer-Encoding``), on a session made by
    ``new_session()`` (which also gives the lean client its trust). ``basic_auth``
    is one more header. Anything the lean client meets at run time that is out
    of its scope hands the check over to aiohttp (``_http1.Handover``).
    """
    if spec.method not in ("GET", "HEAD") or "@" in _parsed(spec.url).raw_authority:
        return None
    if any(name.lower() in _EXCHANGE_HEADERS for name in spec.headers):
        return None
    return lean_client(session)


async def _via_aiohttp(
    session: aiohttp.ClientSession,
    spec: HttpSpec,
    headers: dict[str, str],
    tls: ssl.SSLContext | bool,
    ctx: CheckContext,
) -> _Reply:
    current = current_check.set(ctx)
    try:
        resp = await session.request(
            spec.method,
            _parsed(spec.url),
            headers=headers,
            data=spec.body,
            json=spec.json_body,
            allow_redirects=spec.follow_redirects,
            ssl=tls,
        )
    finally:
        current_check.reset(current)
    if not isinstance(resp, Response):
        resp.close()
        raise TypeError("the http check needs a session made by new_session()")
    return resp


async def _answer(
    spec: HttpSpec,
    ctx: CheckContext,
    request: Callable[[], Awaitable[_Reply]],
) -> CheckResult:
    """Make the request and judge the reply: the check after the client's choice."""
    # The stage goes "connecting", "waiting for response headers" (then "following
    # a redirect" for each hop), "reading body".
    ctx.stage = "connecting"
    t0 = ctx.clock.monotonic()
    metrics: dict[str, float] = {}
    try:
        resp = await request()
        try:
            response_ms = (ctx.clock.monotonic() - t0) * 1000
            metrics["status_code"] = resp.status
            metrics["response_time_ms"] = round(response_ms, 3)
            if resp.peer_cert is not None:
                # A certificate OpenSSL took but cryptography cannot read has no metric.
                with contextlib.suppress(ValueError):
                    cert = read_certificate(resp.peer_cert)
                    metrics["cert_days_left"] = cert.days_left(ctx.clock.time())
            ctx.stage = "reading body"
            body, truncated = await resp.read_at_most(spec.max_body)
        finally:
            resp.close()
    except aiohttp.ClientError as exc:
        return CheckResult(Status.FAILED, _failure(exc), metrics)
    except Failed as exc:
        return CheckResult(Status.FAILED, str(exc), metrics)
    metrics["body_bytes"] = len(body)
    size = f"{len(body)} bytes (cut at max_body)" if truncated else f"{len(body)} bytes"
    summary = f"HTTP {resp.status} {resp.reason or ''}".rstrip()
    if resp.redirects:
        hops = resp.redirects
        summary += f" from {resp.url} after {hops} redirect{'s' if hops > 1 else ''}"
    summary += f", {size} in {response_ms:.0f} ms"
    problems = _problems(spec, resp.headers, body, resp.charset)
    if problems:
        only = f"; only the first {len(body)} bytes were read" if truncated else ""
        return CheckResult(Status.ERROR, f"{'; '.join(problems)} ({summary}{only})", metrics)
    return CheckResult(Status.OK, summary, metrics)


async def check_http(spec: HttpSpec, ctx: CheckContext) -> CheckResult:
    """Request ``url``; judge the status code, headers, texts and JSON values in the body."""
    session = await ctx.http_session()
    headers = spec.headers
    if spec.basic_auth is not None:
        headers = {**headers, "Authorization": spec.basic_auth.header()}
    ca = await verifying_context(spec.ca_file) if spec.ca_file is not None else None
    lean = _lean(spec, session)
    if lean is not None:
        tls = ca or (lean.verifying if spec.verify_tls else UNVERIFIED)
        url = _parsed(spec.url)

        async def lean_request() -> _Reply:
            return await lean.get(
                url, spec.method, headers, tls, spec.max_body, spec.follow_redirects, ctx
            )

        with contextlib.suppress(Handover):
            return await _answer(spec, ctx, lean_request)
    # A bool keeps the session's verifying context (True) or skips verification (False).
    trust: ssl.SSLContext | bool = ca or spec.verify_tls
    return await _answer(spec, ctx, lambda: _via_aiohttp(session, spec, headers, trust, ctx))
