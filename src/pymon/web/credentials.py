"""Checking secrets and signing sessions, for :mod:`pymon.web.auth`.

Checking an argon2 hash is slow on purpose, so results are cached per process by a
SHA-256 of the hash and the secret (a token is verified once, not per request) and
the checks run on a small thread pool of their own, off the event loop. A session
is a signed cookie (:class:`SessionSigner`) whose key the engine keeps
(``secret("web_key")``), so sessions outlive a restart.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error, InvalidHashError

from pymon.web.throttle import Throttle

if TYPE_CHECKING:
    from pymon.engine.ports import EnginePort

__all__ = [
    "MAX_SECRET",
    "AppCredentials",
    "Busy",
    "SessionSigner",
    "Verifier",
    "credentials_of",
    "fingerprint",
    "hash_secret",
    "password_ok",
]

log = logging.getLogger("pymon.web")

MAX_SECRET = 1024
"""Longer "passwords" and tokens are refused before any hashing."""

_CACHE_SIZE = 4096
_MAX_WAITING = 32
"""Distinct checks queued for the argon2 threads at most; more are refused (503)."""


class Busy(Exception):
    """Too many credential checks wait for the argon2 threads: refuse, do not queue."""


def hash_secret(secret: str) -> str:
    """The argon2id hash of ``secret`` (argon2-cffi's default parameters)."""
    return PasswordHasher().hash(secret)


class Verifier:
    """argon2 checks, deduplicated and cached by SHA-256 of (hash, secret), off the loop;
    at most ``max_waiting`` distinct checks queued (beyond: :class:`Busy`)."""

    def __init__(self, max_waiting: int = _MAX_WAITING) -> None:
        self._max_waiting = max_waiting
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
        if len(self._running) >= self._max_waiting:
            # Each check holds ~64 MiB for ~50 ms on one of two threads: a flood from
            # many addresses must not pile up work (and memory) without end.
            raise Busy
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
            "h": fingerprint(password_hash),
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


def fingerprint(password_hash: str) -> str:
    """A short digest of a password hash: a session carries it, so a new password ends it."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


class AppCredentials:
    """Per app: the signing key (kept in the store), the verifier's cache and the
    brute-force throttle."""

    def __init__(self) -> None:
        self.verifier = Verifier()
        self.throttle = Throttle()
        self.signer: SessionSigner | None = None
        self._lock = asyncio.Lock()

    async def ready(self, port: EnginePort) -> SessionSigner:
        """The signer, its key read from the engine on first use."""
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


def credentials_of(app: Any) -> AppCredentials:
    """The app's :class:`AppCredentials`, made on first use."""
    state: AppCredentials | None = getattr(app.state, "pymon_auth", None)
    if state is None:
        state = AppCredentials()
        app.state.pymon_auth = state
    return state


async def password_ok(port: EnginePort, state: AppCredentials, name: str, password: str) -> bool:
    """Whether ``password`` is ``name``'s (an unknown name costs as much to refuse)."""
    if len(password) > MAX_SECRET:
        return False
    user = next((u for u in port.config.web.auth.users if u.name == name), None)
    if user is None:
        await state.verifier.waste(password)
        return False
    return await state.verifier.verify(user.password_hash, password)
