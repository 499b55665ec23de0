"""Check timeouts gathered in slots: they fire, they let finished work be, and a
cancellation from elsewhere stays a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from pymon.checks import deadlines
from pymon.checks.deadlines import SLOT, Deadline


async def test_work_past_its_deadline_times_out() -> None:
    never = asyncio.Event()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError), Deadline(0.05):
        await never.wait()
    assert loop.time() - started >= 0.05
    # The task is not left cancelled: it goes on.
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_work_done_in_time_returns_its_value_and_nothing_fires_later() -> None:
    async def quick() -> int:
        return 7

    with Deadline(0.02):
        assert await quick() == 7
    # The slot's timer fires after the work ended: this task must not be cancelled.
    await asyncio.sleep(0.02 + 3 * SLOT)
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_many_checks_share_a_slot_and_only_the_slow_ones_time_out() -> None:
    async def check(delay: float) -> str:
        try:
            with Deadline(0.1):
                return await asyncio.sleep(delay, "ok")
        except TimeoutError:
            return "timed out"

    results = await asyncio.gather(*(check(0.0 if i % 2 else 10.0) for i in range(200)))
    assert results == ["timed out", "ok"] * 100


async def waiting_check(seconds: float) -> asyncio.Task[None]:
    """A task in a check that waits forever under a ``seconds`` timeout, once waiting."""
    started = asyncio.Event()

    async def check() -> None:
        started.set()
        with Deadline(seconds):
            await asyncio.Event().wait()

    task = asyncio.create_task(check())
    await started.wait()
    return task


async def test_a_cancellation_from_elsewhere_is_not_turned_into_a_timeout() -> None:
    task = await waiting_check(10.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancellation_together_with_the_deadline_stays_a_cancellation() -> None:
    task = await waiting_check(10.0)
    # Both before the task runs again: a cancel from elsewhere, and every deadline
    # slot fired now (the module's own timers, driven by hand to make them meet).
    task.cancel()
    slots = deadlines._loops[asyncio.get_running_loop()]
    for slot in list(slots._slots):
        slots._fire(slot)
    with pytest.raises(asyncio.CancelledError):
        await task
