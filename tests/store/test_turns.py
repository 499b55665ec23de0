"""Writers' turns: one at a time, urgent ones before waiting ordinary ones, and a
waiter cancelled at any moment never keeps the lock from the others."""

from __future__ import annotations

import asyncio

from pymon.store.sql.turns import Turns
from tests.support.clock import settle


async def hold(turns: Turns, release: asyncio.Event) -> None:
    async with turns.turn():
        await release.wait()


async def write(turns: Turns, order: list[str], name: str, urgent: bool = False) -> None:
    async with turns.turn(urgent=urgent):
        order.append(name)


async def test_urgent_waiters_go_before_ordinary_ones_and_each_queue_keeps_its_order() -> None:
    turns = Turns()
    order: list[str] = []
    release = asyncio.Event()
    tasks = [asyncio.create_task(hold(turns, release))]
    await settle()
    for name, urgent in (("a", False), ("b", False), ("x", True), ("y", True)):
        tasks.append(asyncio.create_task(write(turns, order, name, urgent)))
        await settle()
    release.set()
    await asyncio.gather(*tasks)
    assert order == ["x", "y", "a", "b"]


async def test_a_waiter_cancelled_before_or_after_being_handed_the_lock_passes_it_on() -> None:
    turns = Turns()
    order: list[str] = []
    release = asyncio.Event()
    first = asyncio.create_task(hold(turns, release))
    await settle()
    queued = asyncio.create_task(write(turns, order, "cancelled while queued"))
    handed = asyncio.create_task(write(turns, order, "cancelled when handed"))
    last = asyncio.create_task(write(turns, order, "last"))
    await settle()
    queued.cancel()
    release.set()
    await asyncio.sleep(0)  # the holder leaves and hands the lock to ``handed``...
    handed.cancel()  # ...which is cancelled before it runs
    await asyncio.gather(first, queued, handed, last, return_exceptions=True)
    assert order in (["last"], ["cancelled when handed", "last"])
    async with asyncio.timeout(5):
        async with turns.turn():
            pass
