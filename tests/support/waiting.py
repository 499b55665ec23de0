"""Waiting for a real daemon in async tests: poll with a deadline, never sleep-then-assert."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

__all__ = ["wait_for", "wait_until"]


async def wait_for(pred: Callable[[], bool], within: float = 15.0) -> None:
    """Poll ``pred`` until true: the daemon runs on real time, with no hook to wait on."""
    async with asyncio.timeout(within):
        while not pred():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def wait_until(pred: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    """Poll the async ``pred`` (one that asks the port, say) until true."""
    async with asyncio.timeout(within):
        while not await pred():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
