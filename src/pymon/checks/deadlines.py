"""Check timeouts, many to a timer: what ``asyncio.timeout`` does, at a fraction of its cost.

``asyncio.timeout`` gives every check a context manager object, a timer handle of
its own and a reschedule: about a tenth of the event loop's time when thousands of
tcp checks run each second (docs/performance.md, "One type at a time"). Here the
deadlines fall into 10 ms slots; one timer per slot in use cancels the checks
still running when it fires, so a check costs a set insertion and removal. A
timeout fires up to :data:`SLOT` late, against timeouts of a second or more.

Cancellation keeps asyncio's bookkeeping: a check cancelled by its deadline ends
in :class:`TimeoutError`; a cancellation from elsewhere (the daemon stopping),
alone or together with the deadline, goes on as ``CancelledError``.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["SLOT", "within"]

_T = TypeVar("_T")

SLOT = 0.01
"""How late a timeout may fire, in seconds: deadlines are gathered in slots this long."""


class _Entry:
    __slots__ = ("expired", "slot", "task")

    def __init__(self, task: asyncio.Task[object], slot: int) -> None:
        self.task = task
        self.slot = slot
        self.expired = False


class _Deadlines:
    """The running checks' deadlines on one event loop, by slot."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._slots: dict[int, set[_Entry]] = {}

    def add(self, task: asyncio.Task[object], when: float) -> _Entry:
        slot = math.ceil(when / SLOT)
        entries = self._slots.get(slot)
        if entries is None:
            entries = self._slots[slot] = set()
            self._loop.call_at(slot * SLOT, self._fire, slot)
        entry = _Entry(task, slot)
        entries.add(entry)
        return entry

    def remove(self, entry: _Entry) -> None:
        entries = self._slots.get(entry.slot)
        if entries is not None:
            entries.discard(entry)

    def _fire(self, slot: int) -> None:
        for entry in self._slots.pop(slot, ()):
            entry.expired = True
            entry.task.cancel()


_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Deadlines] = (
    weakref.WeakKeyDictionary()
)


async def within(seconds: float, work: Awaitable[_T]) -> _T:
    """Await ``work`` in the current task; TimeoutError once ``seconds`` have
    passed (up to :data:`SLOT` later), as ``asyncio.timeout`` would raise."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is None:  # not in a task: nothing to cancel, so asyncio's own way
        async with asyncio.timeout(seconds):
            return await work
    deadlines = _loops.get(loop)
    if deadlines is None:
        deadlines = _loops[loop] = _Deadlines(loop)
    before = task.cancelling()
    entry = deadlines.add(task, loop.time() + seconds)
    try:
        return await work
    except asyncio.CancelledError:
        # Ours alone: the count of cancellations falls back to what it was.
        if entry.expired and task.uncancel() <= before:
            raise TimeoutError from None
        raise
    finally:
        deadlines.remove(entry)
