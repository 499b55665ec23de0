"""Who may read and write through the web server.

Credentials come from ``web.auth`` (argon2id hashes only; see docs/configuration.md):

* ``Authorization: Bearer <token>`` for scripts: no CSRF token needed (a browser never
  attaches one by itself);
* ``Authorization: Basic`` with a user's name and password: a browser may replay it
  on its own, so a request that looks like a browser's needs a CSRF token;
* a signed session cookie set by :func:`login_user`: always needs a CSRF token
  (``X-CSRF-Token`` header or ``csrf_token`` form field) to write.

Checking an argon2 hash is slow on purpose, so results are cached per process by a
SHA-256 of the hash and the secret (a token is verified once, not per request) and
the checks run on a small thread pool of their own, off the event loop.

The **loopback rule**: with no users and no tokens configured, writes are refused,
except when pymon listens on loopback only, no proxy is trusted, and the request
comes straight from loopback (not forwarded) with a loopback ``Host`` (which stops
DNS rebinding): then the writer is ``local``. A browser's write still needs a CSRF
token (double submit: the ``pymon_csrf`` cookie and the same value sent back).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import logging
import re
import secrets
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs

from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error, InvalidHashError
from fastapi import HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import MutableHeaders

from pymon.web.proxy import public_prefix, was_forwarded

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from pymon.config.schema import WebConfig
    from pymon.engine.ports import EnginePort

__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "NO_CREDENTIALS",
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
]

log = logging.getLogger("pymon.web")

SESSION_COOKIE = "pymon_session"
CSRF_COOKIE = "pymon_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
NO_CREDENTIALS = "writes need web.auth users or tokens"

_IDENTITY_KEY = "pymon_identity"
_NEW_CSRF_KEY = "pymon_new_csrf"
_MAX_SECRET = 1024  # longer "passwords" are refused before any hashing
_CACHE_SIZE = 4096
_CSRF_SHAPE = re.compile(r"[A-Za-z0-9_-]{32,64}", re.ASCII)
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})

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


def hash_secret(secret: str) -> str:
    """The argon2id hash of ``secret`` (argon2-cffi's default parameters)."""
    return PasswordHasher().hash(secret)


class _Verifier:
    """argon2 checks, deduplicated and cached by SHA-256 of (hash, secret), off the loop."""

    def __init__(self) -> None:
        self._hasher = PasswordHasher()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pymon-argon2")
        self._done: OrderedDict[bytes, bool] = OrderedDict()
        self._running: dict[bytes, asyncio.Future[bool]] = {}
        self._dummy: str | None = None

    async def verify(self, hashed: str, secret: str) -> bool:
        """Whether ``secret`` matches ``hashed``; argon2 runs once per pair per process."""
        key = hashlib.sha256(f"{hashed}\0{secret}".encode()).digest()
        if key in self._done:
            self._done.move_to_end(key)
            return self._done[key]
        running = self._running.get(key)
        if running is not None:
            return await asyncio.shield(running)
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, self._check, hashed, secret)
        self._running[key] = future
        try:
            ok = await asyncio.shield(future)
        finally:
            self._running.pop(key, None)
        self._done[key] = ok
        if len(self._done) > _CACHE_SIZE:
            self._done.popitem(last=False)
        return ok

    async def waste(self, secret: str) -> None:
        """Spend what a real check costs, so an unknown user name takes as long to refuse."""
        if self._dummy is None:
            self._dummy = await asyncio.get_running_loop().run_in_executor(
                self._pool, self._hasher.hash, secrets.token_hex(16)
            )
        await self.verify(self._dummy, secret)

    def _check(self, hashed: str, secret: str) -> bool:
        try:
            return self._hasher.verify(hashed, secret)
        except (Argon2Error, InvalidHashError):
            return False


class SessionSigner:
    """Signed session cookies: ``payload.signature``, HMAC-SHA256 over the payload.

    The payload holds the user, the expiry, a random session id and a fingerprint
    of the user's password hash, so changing a password ends its sessions.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key

    def issue(self, user: str, password_hash: str, expires: float) -> str:
        """A cookie value for ``user`` valid until ``expires`` (epoch seconds)."""
        payload = {
            "u": user,
            "e": int(expires),
            "s": secrets.token_urlsafe(16),
            "h": _fingerprint(password_hash),
        }
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._sign(body)}"

    def read(self, cookie: str, now: float) -> tuple[str, str, str] | None:
        """(user, fingerprint, session id) of a genuine, unexpired cookie, else None."""
        body, _, signature = cookie.partition(".")
        if not body or not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            return None
        try:
            data = json.loads(_unb64(body))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(data, dict):
            return None
        user, expires, session, print_ = (data.get(k) for k in ("u", "e", "s", "h"))
        if not (isinstance(user, str) and isinstance(session, str) and isinstance(print_, str)):
            return None
        if not isinstance(expires, int) or expires <= now:
            return None
        return user, print_, session

    def csrf_for(self, session: str) -> str:
        """The CSRF token of a session: stable for its life, unguessable without the key."""
        return _b64(hmac.new(self._key, f"csrf:{session}".encode(), hashlib.sha256).digest())

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


class _AuthState:
    """Per app: the signing key (kept in the store) and the verifier's cache."""

    def __init__(self) -> None:
        self.verifier = _Verifier()
        self.signer: SessionSigner | None = None
        self._lock = asyncio.Lock()

    async def ready(self, port: EnginePort) -> SessionSigner:
        if self.signer is not None:
            return self.signer
        async with self._lock:
            if self.signer is None:
                try:
                    key = await port.secret("web_key")
                except Exception as exc:
                    # Serving on with a key for this process only beats refusing every
                    # request; sessions just do not outlive it.
                    log.error("web: cannot keep the session key in the store: %s", exc)
                    key = secrets.token_hex(32)
                self.signer = SessionSigner(bytes.fromhex(key))
        return self.signer


def _state(app: Any) -> _AuthState:
    state: _AuthState | None = getattr(app.state, "pymon_auth", None)
    if state is None:
        state = _AuthState()
        app.state.pymon_auth = state
    return state


class AuthMiddleware:
    """ASGI middleware: reads each request's credentials once (see :class:`Identity`)
    and sets the anonymous CSRF cookie when a page asked for one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Identify the request, then pass it on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        state = scope.setdefault("state", {})
        state[_IDENTITY_KEY] = await _identify(request)

        async def send_with_cookie(message: Message) -> None:
            fresh = state.get(_NEW_CSRF_KEY)
            if message["type"] == "http.response.start" and fresh is not None:
                headers = MutableHeaders(scope=message)
                headers.append("set-cookie", _cookie_header(request, CSRF_COOKIE, fresh, None))
            await send(message)

        await self.app(scope, receive, send_with_cookie)


async def _identify(request: Request) -> Identity:
    port: EnginePort = request.app.state.port
    auth_state = _state(request.app)
    signer = await auth_state.ready(port)
    config = port.config.web.auth
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if len(value) > _MAX_SECRET * 2:
            return Identity(error="bad credentials")
        if scheme.lower() == "bearer" and value:
            for token in config.tokens:
                if await auth_state.verifier.verify(token.token_hash, value):
                    return Identity(user=token.name, via="token")
            return Identity(error="bad token")
        if scheme.lower() == "basic" and value:
            name, password = _basic(value)
            if name is None or password is None:
                return Identity(error="malformed Basic credentials")
            if await _password_ok(port, auth_state, name, password):
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
            if known is not None and hmac.compare_digest(print_, _fingerprint(known.password_hash)):
                return Identity(user=user, via="session", csrf=signer.csrf_for(session))
    return _ANONYMOUS


def _basic(value: str) -> tuple[str | None, str | None]:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    name, sep, password = decoded.partition(":")
    return (name, password) if sep and name else (None, None)


async def _password_ok(port: EnginePort, state: _AuthState, name: str, password: str) -> bool:
    if len(password) > _MAX_SECRET:
        return False
    user = next((u for u in port.config.web.auth.users if u.name == name), None)
    if user is None:
        await state.verifier.waste(password)
        return False
    return await state.verifier.verify(user.password_hash, password)


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
    port: EnginePort = request.app.state.port
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
    if ident.error is not None:
        raise HTTPException(403, ident.error)
    if ident.via == "token" and ident.user is not None:
        return ident.user
    if ident.via == "session" and ident.user is not None and ident.csrf is not None:
        if not await _csrf_matches(request, ident.csrf):
            raise HTTPException(403, "missing or wrong CSRF token")
        return ident.user
    if ident.via == "basic" and ident.user is not None:
        if _from_browser(request) and not await _double_submitted(request):
            raise HTTPException(403, "missing or wrong CSRF token")
        return ident.user
    if _web(request).auth.configured:
        raise _unauthorized("writing needs credentials (a bearer token, a user or a session)")
    if not local_writes_allowed(request):
        raise HTTPException(403, NO_CREDENTIALS)
    if _from_browser(request) and not await _double_submitted(request):
        raise HTTPException(403, "missing or wrong CSRF token")
    return "local"


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
    is a path under pymon, else the overview) that sets the session cookie. None when wrong.
    """
    port: EnginePort = request.app.state.port
    state = _state(request.app)
    signer = await state.ready(port)
    if not await _password_ok(port, state, name, password):
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
