"""Writers' turns on one database: one at a time, first come first served, except
that an urgent writer goes before every ordinary one still waiting.

SQLite has one writer at a time, so the store queues its writers here rather than
in SQLite's busy handler. The outbox's record of a delivery is urgent: the mail is
already out, and until the delivered mark is committed a kill -9 sends it again;
behind a queue of batch flushes (tens of milliseconds each under load) that
window was wide enough to double a mail every few dozen kills.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

__all__ = ["Turns"]


class Turns:
    """A lock with two queues: ``urgent`` waiters are served before the others."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._ordinary: deque[asyncio.Future[None]] = deque()

    @contextlib.asynccontextmanager
    async def turn(self, *, urgent: bool = False) -> AsyncIterator[None]:
        """Hold the lock for the block; ``urgent`` jumps the queue of ordinary waiters."""
        if self._held:
            waiter = asyncio.get_running_loop().create_future()
            (self._urgent if urgent else self._ordinary).append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._pass_on()  # handed the lock as it was cancelled: give it on
                raise
        else:
            self._held = True
        try:
            yield
        finally:
            self._pass_on()

    def _pass_on(self) -> None:
        """Hand the lock to the next live waiter, urgent ones first, or free it."""
        for queue in (self._urgent, self._ordinary):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._held = False
