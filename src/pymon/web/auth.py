"""Who may read and write through the web server.

Credentials come from ``web.auth`` (argon2id hashes only; see docs/configuration.md):

* ``Authorization: Bearer <token>`` for scripts: no CSRF token needed (a browser never
  attaches one by itself);
* ``Authorization: Basic`` with a user's name and password: a browser may replay it
  on its own, so a request that looks like a browser's needs a CSRF token;
* a signed session cookie set by :func:`login_user`: always needs a CSRF token
  (``X-CSRF-Token`` header or ``csrf_token`` form field) to write.

Checking a secret and signing a session are in :mod:`pymon.web.credentials`
(:func:`hash_secret` and :class:`SessionSigner` are importable from here too).

The **loopback rule**: with no users and no tokens configured, writes are refused,
except when pymon listens on loopback only, no proxy is trusted, and the request
comes straight from loopback (not forwarded) with a loopback ``Host`` (which stops
DNS rebinding): then the writer is ``local``. A browser's write still needs a CSRF
token (double submit: the ``pymon_csrf`` cookie and the same value sent back).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar
from urllib.parse import parse_qs

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.datastructures import MutableHeaders

from pymon.web.credentials import (
    MAX_SECRET,
    Busy,
    SessionSigner,
    credentials_of,
    fingerprint,
    hash_secret,
    password_ok,
)
from pymon.web.engine import port_of
from pymon.web.limits import capped, over_limit, too_large
from pymon.web.proxy import public_prefix, was_forwarded
from pymon.web.throttle import retry_header

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from pymon.config.schema import WebConfig
    from pymon.engine.ports import EnginePort

__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "NO_CREDENTIALS",
    "PUBLIC_READS",
    "SESSION_COOKIE",
    "AuthMiddleware",
    "Identity",
    "SessionSigner",
    "csrf_token",
    "current_user",
    "hash_secret",
    "local_writes_allowed",
    "log_write_policy",
    "login_user",
    "logout_user",
    "require_read",
    "require_write",
    "too_many_attempts",
]

log = logging.getLogger("pymon.web")

SESSION_COOKIE = "pymon_session"
CSRF_COOKIE = "pymon_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
NO_CREDENTIALS = "writes need web.auth users or tokens"

_IDENTITY_KEY = "pymon_identity"
_NEW_CSRF_KEY = "pymon_new_csrf"
_CSRF_SHAPE = re.compile(r"[A-Za-z0-9_-]{32,64}", re.ASCII)
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})

_T = TypeVar("_T")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_OPEN_POSTS = frozenset({"/login", "/logout"})
_HEARTBEAT = "/api/v1/heartbeat/"

PUBLIC_READS = ("/status/", "/badge/", "/static/")
"""Path prefixes (under ``web.base_path``) that anyone may read, whatever
``web.auth`` says: status pages, badges and the static files. Their reads are not
identified at all: credentials sent with them are neither checked (no argon2 work,
no throttle count) nor refused."""

Via = Literal["token", "basic", "session", "none"]


@dataclass(frozen=True, slots=True)
class Identity:
    """What the credentials of one request say: who (``user``), how (``via``), the
    session's CSRF token, or why they were refused (``error``: bad credentials)."""

    user: str | None = None
    via: Via = "none"
    csrf: str | None = None
    error: str | None = None


_ANONYMOUS = Identity()


class AuthMiddleware:
    """ASGI middleware: reads each request's credentials once (see :class:`Identity`),
    refuses a write without good ones before its body is read, caps the body
    (:mod:`pymon.web.limits`) and sets the anonymous CSRF cookie when a page asked
    for one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Identify the request, then pass it on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        state = scope.setdefault("state", {})
        asgi = (scope, receive, send)
        if _public_read(scope):
            await self.app(scope, receive, send)
            return
        try:
            ident = state[_IDENTITY_KEY] = await _identify(request)
        except HTTPException as exc:
            # Throttled, or the checks' queue is full: the credentials were not checked.
            await _answer(exc, *asgi)
            return
        if _needs_write(scope):
            # Refused before the route reads a byte of the body: an anonymous client
            # must not make pymon read, keep or parse what it sends.
            refused = _write_refusal(request, ident)
            if refused is not None:
                # Closing spares reading the body the client may still be sending.
                headers = {**(refused.headers or {}), "Connection": "close"}
                await _answer(HTTPException(refused.status_code, refused.detail, headers), *asgi)
                return
        limit = port_of(request).config.web.max_body
        if over_limit(scope, limit):
            await _answer(too_large(limit), *asgi)
            return

        async def send_with_cookie(message: Message) -> None:
            fresh = state.get(_NEW_CSRF_KEY)
            if message["type"] == "http.response.start" and fresh is not None:
                headers = MutableHeaders(scope=message)
                headers.append("set-cookie", _cookie_header(request, CSRF_COOKIE, fresh, None))
            await send(message)

        await self.app(scope, capped(receive, limit), send_with_cookie)


async def _answer(error: HTTPException, scope: Scope, receive: Receive, send: Send) -> None:
    # The app's own error shape (web/app.py): {"error": detail}.
    response = JSONResponse({"error": error.detail}, error.status_code, headers=error.headers)
    await response(scope, receive, send)


async def _identify(request: Request) -> Identity:
    port = port_of(request)
    auth_state = credentials_of(request.app)
    signer = await auth_state.ready(port)
    config = port.config.web.auth
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if len(value) > MAX_SECRET * 2:
            return Identity(error="bad credentials")
        if scheme.lower() == "bearer" and value:

            async def token_name() -> str | None:
                for token in config.tokens:
                    if await auth_state.verifier.verify(token.token_hash, value):
                        return token.name
                return None

            found = await _throttled(request, None, token_name)
            return Identity(user=found, via="token") if found else Identity(error="bad token")
        if scheme.lower() == "basic" and value:
            name, password = _basic(value)
            if name is None or password is None:
                return Identity(error="malformed Basic credentials")
            ok = await _throttled(
                request, name, lambda: password_ok(port, auth_state, name, password)
            )
            if ok:
                return Identity(user=name, via="basic")
            return Identity(error="bad user name or password")
        return Identity(error="unsupported Authorization scheme (use Bearer or Basic)")
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        read = signer.read(cookie, port.now())
        if read is not None:
            user, print_, session = read
            known = next((u for u in config.users if u.name == user), None)
            # A stale session (user gone, password changed) reads as no session at all.
            if known is not None and hmac.compare_digest(print_, fingerprint(known.password_hash)):
                return Identity(user=user, via="session", csrf=signer.csrf_for(session))
    return _ANONYMOUS


async def _throttled(request: Request, user: str | None, check: Callable[[], Awaitable[_T]]) -> _T:
    """``check()``'s answer (falsy: refused). Raises, checking nothing,
    :func:`too_many_attempts` when the client's address or ``user`` is blocked for
    failing too often (:mod:`pymon.web.throttle`), or 503 when too many checks wait
    for the argon2 threads already (:class:`~pymon.web.credentials.Busy`)."""
    port = port_of(request)
    throttle = credentials_of(request.app).throttle
    client = request.client.host if request.client else None
    keys = throttle.keys(client, user)
    wait = throttle.attempt(keys, port.now())
    if wait > 0:
        raise too_many_attempts(wait)
    try:
        answer = await check()
    except Busy:
        throttle.withdraw(keys)
        raise HTTPException(
            503, "too many credential checks at once: try again", headers={"Retry-After": "1"}
        ) from None
    if answer:
        throttle.succeeded(keys, client, user)
    elif (block := throttle.blocked_for(keys, port.now())) > 0:
        log.warning(
            "web: too many failed attempts from %s%s: refused for %.0f s",
            client or "?",
            f" for user {user[:100]!r}" if user is not None else "",
            block,
        )
    return answer


def too_many_attempts(wait: float) -> HTTPException:
    """The 429 for a client or user blocked for ``wait`` more seconds."""
    seconds = retry_header(wait)
    return HTTPException(
        429,
        f"too many failed attempts: try again in {seconds} s",
        headers={"Retry-After": seconds},
    )


def _basic(value: str) -> tuple[str | None, str | None]:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    name, sep, password = decoded.partition(":")
    return (name, password) if sep and name else (None, None)


def _identity(request: Request) -> Identity:
    found: Identity = getattr(request.state, _IDENTITY_KEY, _ANONYMOUS)
    return found


def current_user(request: Request) -> str | None:
    """The authenticated user of ``request`` (token name or user name), else None."""
    return _identity(request).user


def csrf_token(request: Request) -> str:
    """The CSRF token a page embeds (meta tag, hidden ``csrf_token`` field).

    The session's token when logged in; otherwise a per-browser value, set as the
    ``pymon_csrf`` cookie with the response (double submit).
    """
    ident = _identity(request)
    if ident.csrf is not None:
        return ident.csrf
    existing = request.cookies.get(CSRF_COOKIE)
    if existing is not None and _CSRF_SHAPE.fullmatch(existing):
        return existing
    fresh: str | None = getattr(request.state, _NEW_CSRF_KEY, None)
    if fresh is None:
        fresh = secrets.token_urlsafe(32)
        setattr(request.state, _NEW_CSRF_KEY, fresh)
    return fresh


def _web(request: Request) -> WebConfig:
    port = port_of(request)
    return port.config.web


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": 'Bearer realm="pymon"'})


async def require_read(request: Request) -> str | None:
    """FastAPI dependency for read routes: passes when reading is open
    (``web.auth.read`` false), else needs credentials (401 none, 403 bad ones)."""
    ident = _identity(request)
    if not _web(request).auth.read:
        return ident.user
    if ident.error is not None:
        raise HTTPException(403, ident.error)
    if ident.user is None:
        raise _unauthorized("reading needs credentials (a bearer token, a user or a session)")
    return ident.user


async def require_write(request: Request) -> str:
    """FastAPI dependency for write routes: the acting user's name (``local`` under the
    loopback rule). 401 without credentials; 403 with bad ones, without a CSRF token
    where one is needed, or when no credentials are configured (outside loopback)."""
    ident = _identity(request)
    refused = _write_refusal(request, ident)
    if refused is not None:
        raise refused
    if ident.via == "token" and ident.user is not None:
        return ident.user
    if ident.via == "session" and ident.csrf is not None:
        if not await _csrf_matches(request, ident.csrf):
            raise HTTPException(403, "missing or wrong CSRF token")
    elif _from_browser(request) and not await _double_submitted(request):
        raise HTTPException(403, "missing or wrong CSRF token")
    return ident.user or "local"


def _write_refusal(request: Request, ident: Identity) -> HTTPException | None:
    """Why ``ident`` may not write, judged without the body (the CSRF check, which may
    need the form, comes after); None when it may."""
    if ident.error is not None:
        return HTTPException(403, ident.error)
    if ident.user is not None and ident.via != "none":
        return None
    if _web(request).auth.configured:
        return _unauthorized("writing needs credentials (a bearer token, a user or a session)")
    if not local_writes_allowed(request):
        return HTTPException(403, NO_CREDENTIALS)
    return None


def _public_read(scope: Scope) -> bool:
    """Whether the request reads one of :data:`PUBLIC_READS` (a GET or HEAD)."""
    if scope["method"] not in ("GET", "HEAD"):
        return False
    port: EnginePort = scope["app"].state.port
    path: str = scope["path"]
    base = port.config.web.base_path
    return path.startswith(base) and path[len(base) :].startswith(PUBLIC_READS)


def _needs_write(scope: Scope) -> bool:
    """Whether a request must pass :func:`require_write`'s credential check before its
    body is read: every unsafe method, except on the routes anyone may post to (a job's
    heartbeat, signing in and out, which check their own token or form)."""
    if scope["method"] in _SAFE_METHODS:
        return False
    port: EnginePort = scope["app"].state.port
    base = port.config.web.base_path
    path: str = scope["path"]
    if not path.startswith(base):
        return True
    path = path[len(base) :]
    return path not in _OPEN_POSTS and not path.startswith(_HEARTBEAT)


def local_writes_allowed(request: Request) -> bool:
    """The loopback rule (module docstring): may this request write without credentials?"""
    web = _web(request)
    if web.auth.configured or web.trusted_proxies:
        return False
    if not _is_loopback(web.host_port()[0]):
        return False
    client = request.client.host if request.client else None
    if client is None or not _is_loopback(client) or was_forwarded(request):
        return False
    host = request.headers.get("host", "")
    name = host[1 : host.find("]")] if host.startswith("[") else host.rpartition(":")[0] or host
    return _is_loopback(name)


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _from_browser(request: Request) -> bool:
    # What a browser adds and a script usually does not: a cross-site form post
    # carries Origin (and Sec-Fetch-Site), a same-site one the pymon cookies.
    headers = request.headers
    return "origin" in headers or "sec-fetch-site" in headers or "cookie" in headers


async def _double_submitted(request: Request) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    return (
        cookie is not None
        and _CSRF_SHAPE.fullmatch(cookie) is not None
        and await _csrf_matches(request, cookie)
    )


async def _csrf_matches(request: Request, expected: str) -> bool:
    sent = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if sent is None and content_type == "application/x-www-form-urlencoded":
        # Parsed here rather than with request.form(): the body stays cached on the
        # request for the route, and no multipart parser is needed.
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        values = form.get(CSRF_FIELD)
        sent = values[0] if values else None
    return sent is not None and hmac.compare_digest(sent.encode(), expected.encode())


def _cookie_header(request: Request, name: str, value: str, max_age: int | None) -> str:
    response = Response()
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=public_prefix(request) or "/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response.headers["set-cookie"]


async def login_user(
    request: Request, name: str, password: str, next_url: str | None = None
) -> Response | None:
    """Check ``name`` and ``password``; on success a 303 redirect (to ``next_url`` if it
    is a path under pymon, else the overview) that sets the session cookie. None when
    wrong. Raises :func:`too_many_attempts` (429) when the client or user failed too
    often, 503 when too many checks are waiting already.
    """
    port = port_of(request)
    state = credentials_of(request.app)
    signer = await state.ready(port)
    if not await _throttled(request, name, lambda: password_ok(port, state, name, password)):
        log.warning("web: failed login for %r from %s", name[:100], _peer(request))
        return None
    user = next(u for u in port.config.web.auth.users if u.name == name)
    ttl = port.config.web.auth.session_ttl
    cookie = signer.issue(name, user.password_hash, port.now() + ttl)
    prefix = public_prefix(request)
    target = f"{prefix}/"
    if next_url and next_url.startswith(f"{prefix}/") and not next_url.startswith("//"):
        target = next_url
    response = RedirectResponse(target, status_code=303)
    response.headers.append("set-cookie", _cookie_header(request, SESSION_COOKIE, cookie, int(ttl)))
    log.info("web: %s logged in from %s", name, _peer(request))
    return response


def logout_user(response: Response, request: Request | None = None) -> None:
    """End the session: ``response`` deletes the cookie (pass ``request`` when pymon
    runs under a prefix, so the cookie's path matches)."""
    path = (public_prefix(request) or "/") if request is not None else "/"
    response.delete_cookie(SESSION_COOKIE, path=path, httponly=True, samesite="strict")


def _peer(request: Request) -> str:
    return request.client.host if request.client else "?"


def log_write_policy(web: WebConfig) -> None:
    """Say at start how writes are guarded (a WARNING under the loopback rule)."""
    if web.auth.configured:
        return
    if _is_loopback(web.host_port()[0]) and not web.trusted_proxies:
        log.warning(
            "web: no web.auth users or tokens: writes are allowed without credentials "
            "from this machine only (listening on loopback %s)",
            web.listen,
        )
    else:
        log.warning("web: no web.auth users or tokens: every write is refused (%s)", NO_CREDENTIALS)
