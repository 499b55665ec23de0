"""Credentials on the web app (on a fake engine port): tokens, users, sessions, CSRF and
the loopback rule; and `pymon hash-password`."""

from __future__ import annotations

import asyncio
import base64
import subprocess
from collections.abc import Callable

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import Request

from pymon.config.load import load_config_text
from pymon.errors import ConfigError
from pymon.model import Status
from pymon.web.app import create_app
from pymon.web.auth import CSRF_COOKIE, NO_CREDENTIALS, SESSION_COOKIE, SessionSigner, login_user
from tests.support.cli import PYMON
from tests.support.port import FakePort, fake_port
from tests.web.helpers import app_client

# Cheap argon2id parameters: the same algorithm, fast enough for a test.
_FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
TOKEN = "s3cret-token-for-ci"
PASSWORD = "correct horse"
TOKEN_HASH = _FAST.hash(TOKEN)
PASSWORD_HASH = _FAST.hash(PASSWORD)
AUTH = f"""
  auth:
    users: [{{name: ann, password_hash: "{PASSWORD_HASH}"}}]
    tokens: [{{name: ci, token_hash: "{TOKEN_HASH}"}}]
"""


def make(web: str = "", *, listen: str = "127.0.0.1:8080") -> FakePort:
    """The engine with a web section of ``web`` and ``down`` failed (an open incident)."""
    port = fake_port(
        f"""
web:
  listen: "{listen}"
{web}
defaults: {{flap_guard: {{failed: 1}}}}
services:
  - {{name: down, type: tcp, host: 127.0.0.1, port: 9}}
"""
    )
    port.check("down", Status.FAILED, "connection refused")
    return port


def basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


BEARER = {"Authorization": f"Bearer {TOKEN}"}


# -- writes with credentials configured ---------------------------------------------------


async def test_write_without_credentials_is_401_with_a_challenge() -> None:
    async with app_client(make(AUTH)) as c:
        answer = await c.post("/api/v1/services/down/ack")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert "credentials" in answer.json()["error"]


async def test_bad_token_is_403() -> None:
    async with app_client(make(AUTH)) as c:
        answer = await c.post("/api/v1/services/down/ack", headers={"Authorization": "Bearer nope"})
    assert answer.status_code == 403
    assert answer.json()["error"] == "bad token"


async def test_bearer_write_acts_as_the_token() -> None:
    port = make(AUTH)
    async with app_client(port) as c:
        answer = await c.post("/api/v1/services/down/ack", headers=BEARER, json={"author": "x"})
    assert answer.status_code == 200
    assert answer.json()["incident"]["ack"]["author"] == "ci"


async def test_basic_write_acts_as_the_user() -> None:
    async with app_client(make(AUTH)) as c:
        answer = await c.post("/api/v1/services/down/ack", headers=basic("ann", PASSWORD))
    assert answer.status_code == 200
    assert answer.json()["incident"]["ack"]["author"] == "ann"


@pytest.mark.parametrize(
    "headers",
    [
        basic("ann", "wrong"),
        basic("nobody", PASSWORD),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Digest username=ann"},
        {"Authorization": "Bearer " + "x" * 5000},
    ],
)
async def test_bad_basic_credentials_are_403(headers: dict[str, str]) -> None:
    async with app_client(make(AUTH)) as c:
        answer = await c.post("/api/v1/services/down/ack", headers=headers)
    assert answer.status_code == 403


async def test_basic_from_a_browser_needs_csrf() -> None:
    headers = {**basic("ann", PASSWORD), "Origin": "http://evil.example"}
    async with app_client(make(AUTH)) as c:
        answer = await c.post("/api/v1/services/down/ack", headers=headers)
    assert answer.status_code == 403
    assert "CSRF" in answer.json()["error"]


async def test_a_token_is_verified_once_per_process() -> None:
    app = create_app(make(AUTH))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        for _ in range(3):
            assert (await c.get("/api/v1/services", headers=BEARER)).status_code == 200
    # One verdict cached for the one token, whatever the number of requests.
    assert len(app.state.pymon_auth.verifier._done) == 1


# -- sessions ------------------------------------------------------------------------------


async def signer(port: FakePort) -> SessionSigner:
    """The app's session signer: its key is the engine's ``web_key`` secret."""
    return SessionSigner(bytes.fromhex(await port.secret("web_key")))


async def login(c: httpx.AsyncClient, port: FakePort) -> str:
    """Log in through a session cookie (as the login page does) and return the CSRF token."""
    sessions = await signer(port)
    cookie = sessions.issue("ann", PASSWORD_HASH, port.now() + 3600)
    c.cookies.set(SESSION_COOKIE, cookie)
    session = sessions.read(cookie, port.now())
    assert session is not None
    return sessions.csrf_for(session[2])


async def test_session_write_needs_the_csrf_header() -> None:
    port = make(AUTH)
    async with app_client(port) as c:
        csrf = await login(c, port)
        missing = await c.post("/api/v1/services/down/ack")
        wrong = await c.post("/api/v1/services/down/ack", headers={"X-CSRF-Token": "x" * 43})
        right = await c.post("/api/v1/services/down/ack", headers={"X-CSRF-Token": csrf})
    assert (missing.status_code, wrong.status_code) == (403, 403)
    assert "CSRF" in missing.json()["error"]
    assert right.status_code == 200
    assert right.json()["incident"]["ack"]["author"] == "ann"


async def test_session_write_takes_the_csrf_form_field() -> None:
    port = make(AUTH)
    async with app_client(port) as c:
        csrf = await login(c, port)
        answer = await c.post("/api/v1/maintenance/nope", data={"csrf_token": csrf})
        deleted = await c.request("DELETE", "/api/v1/maintenance/nope", data={"csrf_token": csrf})
    assert answer.status_code == 405  # the route exists for DELETE only
    assert deleted.status_code == 404  # past auth and CSRF: no such window


async def test_expired_session_is_no_session() -> None:
    port = make(AUTH)
    sessions = await signer(port)
    async with app_client(port) as c:
        c.cookies.set(SESSION_COOKIE, sessions.issue("ann", PASSWORD_HASH, port.now() - 1))
        answer = await c.post("/api/v1/services/down/ack", headers={"X-CSRF-Token": "x"})
    assert answer.status_code == 401


@pytest.mark.parametrize(
    "forge",
    [
        lambda good: good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        lambda good: SessionSigner(b"k" * 32).issue("ann", PASSWORD_HASH, 4e9),
        lambda good: "garbage",
        lambda good: "." * 10,
    ],
)
async def test_forged_session_is_no_session(forge: Callable[[str], str]) -> None:
    port = make(AUTH)
    sessions = await signer(port)
    async with app_client(port) as c:
        c.cookies.set(SESSION_COOKIE, forge(sessions.issue("ann", PASSWORD_HASH, 4e9)))
        answer = await c.post("/api/v1/services/down/ack")
    assert answer.status_code == 401


async def test_a_changed_password_ends_sessions() -> None:
    port = make(AUTH)
    sessions = await signer(port)
    async with app_client(port) as c:
        c.cookies.set(SESSION_COOKIE, sessions.issue("ann", _FAST.hash("old one"), 4e9))
        answer = await c.get("/api/v1/services")
    assert answer.status_code == 200  # reading is open: the stale session is just ignored
    async with app_client(port) as c:
        c.cookies.set(SESSION_COOKIE, sessions.issue("ann", _FAST.hash("old one"), 4e9))
        assert (await c.post("/api/v1/services/down/ack")).status_code == 401


async def test_login_user_sets_a_strict_http_only_cookie() -> None:
    app = create_app(make(AUTH))

    # A GET: an unsafe method on a route pymon does not know needs write credentials.
    @app.get("/test-login")
    async def test_login(request: Request, u: str, p: str) -> object:
        response = await login_user(request, u, p)
        return response if response is not None else {"refused": True}

    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        wrong = await c.get("/test-login", params={"u": "ann", "p": "nope"})
        right = await c.get("/test-login", params={"u": "ann", "p": PASSWORD})
        unknown = await c.get("/test-login", params={"u": "bob", "p": PASSWORD})
    assert wrong.json() == {"refused": True}
    assert unknown.json() == {"refused": True}
    assert right.status_code == 303
    cookie = right.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie


# -- reading -------------------------------------------------------------------------------

READ_AUTH = AUTH + "    read: true\n"
READ_ROUTES = [
    "/api/v1/services",
    "/api/v1/services/down",
    "/api/v1/services/down/history",
    "/api/v1/events",
    "/api/v1/notifications",
    "/api/v1/maintenance",
    "/metrics",
]


@pytest.mark.parametrize("route", READ_ROUTES)
async def test_reading_is_open_by_default(route: str) -> None:
    async with app_client(make(AUTH)) as c:
        assert (await c.get(route)).status_code == 200


@pytest.mark.parametrize("route", READ_ROUTES)
async def test_read_true_guards_every_read_route(route: str) -> None:
    async with app_client(make(READ_AUTH)) as c:
        anonymous = await c.get(route)
        bad = await c.get(route, headers={"Authorization": "Bearer nope"})
        good = await c.get(route, headers=BEARER)
    assert (anonymous.status_code, bad.status_code, good.status_code) == (401, 403, 200)


async def test_healthz_and_heartbeat_are_never_guarded() -> None:
    async with app_client(make(READ_AUTH)) as c:
        assert (await c.get("/healthz")).status_code == 200
        assert (await c.post("/api/v1/heartbeat/unknown")).status_code == 404


def test_read_true_without_credentials_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        load_config_text("web:\n  auth:\n    read: true\n")
    assert "web.auth" in str(err.value.issues[0])


# -- the loopback rule ---------------------------------------------------------------------


async def test_loopback_server_takes_local_writes_without_credentials() -> None:
    async with app_client(make()) as c:
        answer = await c.post("/api/v1/services/down/ack", json={"author": "ann"})
    assert answer.status_code == 200
    assert answer.json()["incident"]["ack"]["author"] == "ann"


async def test_server_not_on_loopback_refuses_writes_without_credentials() -> None:
    port = make(listen="0.0.0.0:8080")
    async with app_client(port) as c:
        answer = await c.post("/api/v1/services/down/ack")
    assert answer.status_code == 403
    assert answer.json()["error"] == NO_CREDENTIALS


async def test_loopback_rule_needs_a_loopback_peer() -> None:
    port = make(listen="127.0.0.1:8080")
    async with app_client(port, peer="192.0.2.7") as c:
        assert (await c.post("/api/v1/services/down/ack")).status_code == 403
    async with app_client(port) as c:
        assert (await c.post("/api/v1/services/down/ack")).status_code == 200


async def test_loopback_rule_refuses_a_rebound_host_name() -> None:
    async with app_client(make()) as c:
        answer = await c.post("/api/v1/services/down/ack", headers={"Host": "evil.example"})
    assert answer.status_code == 403


async def test_loopback_rule_refuses_forwarded_requests() -> None:
    async with app_client(make()) as c:
        answer = await c.post(
            "/api/v1/services/down/ack", headers={"X-Forwarded-Host": "pymon.example"}
        )
    assert answer.status_code == 403


@pytest.mark.parametrize(
    "header",
    [
        "X-Real-IP",
        "True-Client-IP",
        "CF-Connecting-IP",
        "X-Client-IP",
        "X-Cluster-Client-IP",
        "Forwarded-For",
        "X-Forwarded",
        "X-Original-Forwarded-For",
        "Client-IP",
    ],
)
async def test_loopback_rule_refuses_every_common_forwarding_header(header: str) -> None:
    # A proxy on this machine that sets only X-Real-IP would otherwise make a remote
    # client's write look local.
    async with app_client(make()) as c:
        answer = await c.post("/api/v1/services/down/ack", headers={header: "203.0.113.9"})
    assert answer.status_code == 403
    assert answer.json()["error"] == NO_CREDENTIALS


async def test_loopback_browser_write_needs_the_double_submitted_token() -> None:
    async with app_client(make()) as c:
        cross_site = await c.post(
            "/api/v1/services/down/ack", headers={"Origin": "http://evil.example"}
        )
        c.cookies.set(CSRF_COOKIE, "a" * 43)
        mismatched = await c.post(
            "/api/v1/services/down/ack",
            headers={"Origin": "http://127.0.0.1", "X-CSRF-Token": "b" * 43},
        )
        matched = await c.post(
            "/api/v1/services/down/ack",
            headers={"Origin": "http://127.0.0.1", "X-CSRF-Token": "a" * 43},
        )
    assert (cross_site.status_code, mismatched.status_code) == (403, 403)
    assert matched.status_code == 200


# -- pymon hash-password ------------------------------------------------------------------


def hash_password(stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PYMON, "hash-password"], input=stdin, capture_output=True, text=True, timeout=60
    )


async def test_hash_password_reads_stdin_and_prints_an_argon2id_hash() -> None:
    done = await asyncio.to_thread(hash_password, "hunter2\n")
    assert done.returncode == 0, done.stderr
    hashed = done.stdout.strip()
    assert hashed.startswith("$argon2id$")
    assert PasswordHasher().verify(hashed, "hunter2")
    assert "hunter2" not in done.stdout


async def test_hash_password_refuses_an_empty_password() -> None:
    done = await asyncio.to_thread(hash_password, "\n")
    assert done.returncode == 1
    assert "empty" in done.stderr


def test_a_bad_hash_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        load_config_text('web:\n  auth:\n    users: [{name: ann, password_hash: "hunter2"}]\n')
    text = str(err.value.issues[0])
    assert "web.auth.users[0].password_hash" in text and "argon2id" in text
    assert "hunter2" not in text
