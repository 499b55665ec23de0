"""Check timeouts, many to a timer: what ``asyncio.timeout`` does, at a fraction of its cost.

``asyncio.timeout`` gives every check a context manager object, a timer handle of
its own and a reschedule: about a tenth of the event loop's time when thousands of
tcp checks run each second (docs/performance.md, "One type at a time"). Here the
deadlines fall into 10 ms slots; one timer per slot in use cancels the checks
still running when it fires, so a check costs a set insertion and removal, in a
plain context manager (:class:`Deadline`). A
timeout fires up to :data:`SLOT` late, against timeouts of a second or more.

Cancellation keeps asyncio's bookkeeping: a check cancelled by its deadline ends
in :class:`TimeoutError`; a cancellation from elsewhere (the daemon stopping),
alone or together with the deadline, goes on as ``CancelledError``.
"""

from __future__ import annotations

import asyncio
import math
import weakref

__all__ = ["SLOT", "Deadline"]

SLOT = 0.01
"""How late a timeout may fire, in seconds: deadlines are gathered in slots this long."""


class _Deadlines:
    """The running checks' deadlines on one event loop, by slot."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._slots: dict[int, set[Deadline]] = {}

    def add(self, entry: Deadline, when: float) -> int:
        slot = math.ceil(when / SLOT)
        entries = self._slots.get(slot)
        if entries is None:
            entries = self._slots[slot] = set()
            self._loop.call_at(slot * SLOT, self._fire, slot)
        entries.add(entry)
        return slot

    def remove(self, entry: Deadline, slot: int) -> None:
        entries = self._slots.get(slot)
        if entries is not None:
            entries.discard(entry)

    def _fire(self, slot: int) -> None:
        for entry in self._slots.pop(slot, ()):
            entry.expire()


_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Deadlines] = (
    weakref.WeakKeyDictionary()
)


class Deadline:
    """``with Deadline(seconds):`` in a task: the block's awaits end in TimeoutError
    once ``seconds`` have passed (up to :data:`SLOT` later).

    A plain (not async) context manager, so that a check's run costs no coroutine of
    its own for its timeout. Outside a task there is nothing to cancel: RuntimeError.
    """

    __slots__ = ("_before", "_deadlines", "_expired", "_seconds", "_slot", "_task")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._expired = False

    def __enter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline needs a running task to cancel")
        loop = task.get_loop()
        deadlines = _loops.get(loop)
        if deadlines is None:
            deadlines = _loops[loop] = _Deadlines(loop)
        self._task, self._deadlines = task, deadlines
        self._before = task.cancelling()
        self._slot = deadlines.add(self, loop.time() + self._seconds)

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self._deadlines.remove(self, self._slot)
        # Ours alone: the count of cancellations falls back to what it was.
        expired = kind is asyncio.CancelledError and self._expired
        if expired and self._task.uncancel() <= self._before:
            raise TimeoutError from None

    def expire(self) -> None:
        """The slot's time came while the block still ran: cancel its task."""
        self._expired = True
        self._task.cancel()
