"""Brute-force throttling: per client address and per user, exponential blocks, 429
with ``Retry-After``, no argon2 work for a blocked attempt, and no lock-out of the
real user by someone guessing elsewhere. Time is the fake port's clock."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from pymon.web.app import create_app
from pymon.web.credentials import Verifier, credentials_of
from pymon.web.throttle import (
    FORGET_AFTER,
    FREE_PER_ADDRESS,
    FREE_PER_USER,
    LONGEST_BLOCK,
    Throttle,
    address_key,
)
from tests.support.waiting import wait_for
from tests.web.helpers import app_client
from tests.web.test_auth import AUTH, BEARER, PASSWORD, READ_AUTH, basic, make
from tests.web.test_pages import Dom, csrf

ROUTE = "/api/v1/services/down/ack"


# -- the throttle itself -------------------------------------------------------------------


def fail(throttle: Throttle, keys: list[str], now: float, times: int) -> list[float]:
    return [throttle.attempt(keys, now) for _ in range(times)]


def test_free_failures_then_blocks_that_double_up_to_the_longest() -> None:
    throttle, keys, now = Throttle(), [address_key("192.0.2.1")], 1000.0
    assert fail(throttle, keys, now, FREE_PER_ADDRESS + 1) == [0.0] * (FREE_PER_ADDRESS + 1)
    blocks = []
    for _ in range(14):
        blocks.append(throttle.blocked_for(keys, now))
        now += blocks[-1]
        assert throttle.attempt(keys, now) == 0.0
    assert blocks[:5] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert blocks[-1] == LONGEST_BLOCK


def test_a_blocked_attempt_is_refused_and_not_counted() -> None:
    throttle, keys = Throttle(), [address_key("192.0.2.1")]
    fail(throttle, keys, 0.0, FREE_PER_ADDRESS + 1)
    assert throttle.attempt(keys, 0.5) == 0.5
    assert throttle.attempt(keys, 0.9) == pytest.approx(0.1)
    assert throttle.attempt(keys, 1.0) == 0.0  # its own block: 2 s, not more
    assert throttle.blocked_for(keys, 1.0) == 2.0


def test_failures_are_forgotten_after_a_quiet_hour() -> None:
    throttle, keys = Throttle(), [address_key("192.0.2.1")]
    fail(throttle, keys, 0.0, FREE_PER_ADDRESS)
    fail(throttle, keys, FORGET_AFTER + 1, FREE_PER_ADDRESS)
    assert throttle.blocked_for(keys, FORGET_AFTER + 1) == 0.0


def test_a_success_takes_its_attempt_back() -> None:
    throttle = Throttle()
    keys = throttle.keys("192.0.2.1", "ann")
    fail(throttle, keys, 0.0, FREE_PER_ADDRESS)
    throttle.attempt(keys, 0.0)
    throttle.succeeded(keys, "192.0.2.1", "ann")
    assert throttle.blocked_for(keys, 0.0) == 0.0


def test_an_unchecked_attempt_is_withdrawn() -> None:
    # A check refused as busy (nothing was checked) must not count as a failure.
    throttle, keys = Throttle(), [address_key("192.0.2.1")]
    fail(throttle, keys, 0.0, FREE_PER_ADDRESS + 1)
    throttle.withdraw(keys)
    assert throttle.blocked_for(keys, 0.0) == 0.0
    assert throttle.attempt(keys, 0.0) == 0.0


def test_an_address_that_signed_in_as_the_user_escapes_the_users_key() -> None:
    throttle = Throttle()
    home = throttle.keys("192.0.2.1", "ann")
    assert throttle.attempt(home, 0.0) == 0.0
    throttle.succeeded(home, "192.0.2.1", "ann")
    for n in range(FREE_PER_USER + 1):
        throttle.attempt(throttle.keys(f"198.51.100.{n}", "ann"), 1.0)
    assert throttle.blocked_for(throttle.keys("203.0.113.1", "ann"), 1.0) == 1.0
    assert throttle.keys("192.0.2.1", "ann") == [address_key("192.0.2.1")]
    assert throttle.blocked_for(throttle.keys("192.0.2.1", "ann"), 1.0) == 0.0


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.1", "addr:192.0.2.1"),
        ("::ffff:192.0.2.1", "addr:192.0.2.1"),
        ("2001:db8:1:2:aaaa::1", "addr:2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "addr:2001:db8:1:2::/64"),
    ],
)
def test_an_ipv6_client_counts_as_its_64(address: str, key: str) -> None:
    assert address_key(address) == key


# -- on the app ----------------------------------------------------------------------------


async def attempts(c: httpx.AsyncClient, headers: dict[str, str], n: int) -> list[int]:
    return [(await c.post(ROUTE, headers=headers)).status_code for _ in range(n)]


@pytest.mark.parametrize(
    "wrong",
    [{"Authorization": "Bearer nope"}, basic("ann", "nope"), basic("nobody", "nope")],
    ids=["bearer", "basic", "basic-unknown-user"],
)
async def test_wrong_credentials_are_throttled_then_429_with_retry_after(
    wrong: dict[str, str],
) -> None:
    port = make(AUTH)
    async with app_client(port) as c:
        statuses = await attempts(c, wrong, FREE_PER_ADDRESS + 1)
        blocked = await c.post(ROUTE, headers=wrong)
        await port.clock.advance(1.0)
        again = await attempts(c, wrong, 1)
        second = await c.post(ROUTE, headers=wrong)
        right_meanwhile = await c.post(ROUTE, headers=BEARER)
        await port.clock.advance(2.0)
        right_after = await c.post(ROUTE, headers=BEARER)
        afresh = await attempts(c, wrong, 1)
    assert statuses == [403] * (FREE_PER_ADDRESS + 1)
    assert (blocked.status_code, blocked.headers["retry-after"]) == (429, "1")
    assert blocked.json()["error"] == "too many failed attempts: try again in 1 s"
    assert again == [403]
    assert (second.status_code, second.headers["retry-after"]) == (429, "2")
    assert right_meanwhile.status_code == 429
    assert right_after.status_code == 200
    assert afresh == [403]


async def test_guessing_from_many_addresses_blocks_the_user_not_her_own_address() -> None:
    app = create_app(make(READ_AUTH))

    async def post(peer: str, password: str) -> int:
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return (await c.get("/api/v1/config", headers=basic("ann", password))).status_code

    assert await post("192.0.2.1", PASSWORD) == 200
    guesses = [await post(f"198.51.100.{n}", f"guess{n}") for n in range(FREE_PER_USER + 1)]
    assert guesses == [403] * (FREE_PER_USER + 1)
    assert await post("203.0.113.7", PASSWORD) == 429
    assert await post("192.0.2.1", PASSWORD) == 200


async def test_a_blocked_attempt_costs_no_argon2_work(monkeypatch: pytest.MonkeyPatch) -> None:
    checks: list[str] = []
    real = Verifier._check

    def counted(self: Verifier, hashed: str, secret: str) -> bool:
        checks.append(secret)
        return real(self, hashed, secret)

    monkeypatch.setattr(Verifier, "_check", counted)
    async with app_client(make(AUTH)) as c:
        for n in range(FREE_PER_ADDRESS + 1):
            await c.post(ROUTE, headers={"Authorization": f"Bearer wrong{n}"})
        before = len(checks)
        answers = [
            (await c.post(ROUTE, headers={"Authorization": f"Bearer more{n}"})).status_code
            for n in range(20)
        ]
    assert answers == [429] * 20
    assert len(checks) == before


async def test_attempts_in_parallel_cannot_outrun_the_count() -> None:
    async with app_client(make(AUTH)) as c:
        answers = await asyncio.gather(
            *(c.post(ROUTE, headers={"Authorization": f"Bearer try{n}"}) for n in range(30))
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [403] * (FREE_PER_ADDRESS + 1) + [429] * (30 - FREE_PER_ADDRESS - 1)


async def test_the_login_form_is_throttled_too() -> None:
    port = make(AUTH)
    async with app_client(port) as c:
        token = await csrf(c, "/login")
        form = {"csrf_token": token, "username": "ann", "password": "wrong"}
        statuses = [(await c.post("/login", data=form)).status_code for _ in range(6)]
        blocked = await c.post("/login", data={**form, "password": PASSWORD})
        await port.clock.advance(1.0)
        right = await c.post("/login", data={**form, "password": PASSWORD})
    assert statuses == [401] * 6
    assert (blocked.status_code, blocked.headers["retry-after"]) == (429, "1")
    assert "too many failed attempts" in Dom(blocked.text).by_id("login-error").text
    assert right.status_code == 303


async def test_checks_waiting_for_argon2_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # A flood from many addresses (each under its own limit) must not queue argon2
    # work without end: beyond the bound a check is refused (503) and not counted.
    gate = threading.Event()
    real = Verifier._check

    def held(self: Verifier, hashed: str, secret: str) -> bool:
        gate.wait(timeout=60)
        return real(self, hashed, secret)

    monkeypatch.setattr(Verifier, "_check", held)
    app = create_app(make(AUTH))
    credentials_of(app).verifier = Verifier(max_waiting=2)

    async def post(n: int) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(f"198.51.100.{n}", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return await c.post(ROUTE, headers={"Authorization": f"Bearer guess{n}"})

    tasks = [asyncio.create_task(post(n)) for n in range(5)]
    try:
        await wait_for(lambda: sum(t.done() for t in tasks) == 3)
    finally:
        gate.set()
    answers = await asyncio.gather(*tasks)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [403, 403, 503, 503, 503]
    busy = next(a for a in answers if a.status_code == 503)
    assert busy.headers["retry-after"] == "1"
