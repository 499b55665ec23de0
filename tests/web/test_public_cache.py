"""The cache of rendered status pages and badges: one rendering for every request that
comes while it runs, kept for its time to live, nothing kept from a failure."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from pymon.web.public.cache import Rendered, Snapshots
from tests.support.clock import FakeClock


async def test_requests_during_a_rendering_wait_for_it() -> None:
    clock = FakeClock(1000.0)
    cache = Snapshots(clock.time, ttl=10)
    release = asyncio.Event()
    calls = 0

    async def make() -> bytes:
        nonlocal calls
        calls += 1
        await release.wait()
        return b"page %d" % calls

    waiting = [asyncio.create_task(cache.get("k", make)) for _ in range(50)]
    await asyncio.sleep(0)
    release.set()
    bodies = {r.body for r in await asyncio.gather(*waiting)}
    assert (bodies, calls, cache.made) == ({b"page 1"}, 1, 1)
    await clock.advance(9.9)
    assert (await cache.get("k", make)).body == b"page 1"
    await clock.advance(0.2)
    assert (await cache.get("k", make)).body == b"page 2"
    assert (await cache.get("other", make)).body == b"page 3"


async def test_a_failed_rendering_reaches_its_waiters_and_is_not_kept() -> None:
    cache = Snapshots(FakeClock(0.0).time)
    release = asyncio.Event()

    async def broken() -> bytes:
        await release.wait()
        raise RuntimeError("store away")

    waiting = [asyncio.create_task(cache.get("k", broken)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    for task in waiting:
        with pytest.raises(RuntimeError, match="store away"):
            await task

    async def fine() -> bytes:
        return b"ok"

    assert (await cache.get("k", fine)).body == b"ok"


async def test_the_oldest_entries_go_beyond_the_limit() -> None:
    cache = Snapshots(FakeClock(0.0).time, limit=2)
    made: list[str] = []

    def maker(key: str) -> Callable[[], Awaitable[bytes]]:
        async def make() -> bytes:
            made.append(key)
            return key.encode()

        return make

    for key in ("a", "b", "c", "a"):
        await cache.get(key, maker(key))
    assert made == ["a", "b", "c", "a"]


def test_only_a_large_body_is_gzipped() -> None:
    assert Rendered.of(b"x" * 100).gzipped is None
    big = Rendered.of(b"<li></li>" * 1000)
    assert big.gzipped is not None and len(big.gzipped) < len(big.body) / 10
