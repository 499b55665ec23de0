"""``checks.base``: how a host becomes the addresses a check connects to."""

from __future__ import annotations

import aiohttp
import pytest

from pymon.checks.base import CheckContext, Resolver, resolve_host


class _RefusingResolver:
    """A resolver that must not be asked: IP literals never go to DNS."""

    async def resolve(self, host: str) -> list[str]:
        raise AssertionError(f"resolver asked for {host!r}")


class _OneAddress:
    async def resolve(self, host: str) -> list[str]:
        return ["192.0.2.7"]


async def _no_session() -> aiohttp.ClientSession:
    raise AssertionError("no session needed")


def _ctx(resolver: Resolver) -> CheckContext:
    return CheckContext(timeout=1.0, http_session=_no_session, resolver=resolver)


@pytest.mark.parametrize(
    ("host", "address"),
    [("127.0.0.1", "127.0.0.1"), ("::0001", "::1"), ("0:0:0:0:0:0:0:1", "::1")],
)
async def test_ip_literals_skip_the_resolver_and_are_normalised(host: str, address: str) -> None:
    # Asked twice: the second answer comes from the per-host cache and is the same.
    for _ in range(2):
        assert await resolve_host(host, _ctx(_RefusingResolver())) == [address]


async def test_names_go_to_the_resolver_every_time() -> None:
    ctx = _ctx(_OneAddress())
    assert await resolve_host("db.example", ctx) == ["192.0.2.7"]
    assert ctx.stage == "resolving db.example"
