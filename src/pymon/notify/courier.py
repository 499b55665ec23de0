"""The courier: a thread with an event loop of its own that SMTP conversations run on.

Between the moment a mail server keeps a notice (its ``250``) and the moment pymon
has noted that, a crash sends the notice again at the next start. On the daemon's
loop that moment waits for whatever the loop is busy with (restoring and scheduling
hundreds of services at start-up, a burst of results): tens of milliseconds. On a
loop that only talks SMTP, the ``250`` is read as soon as the interpreter lets this
thread run, and the outbox's journal line is written from here
(``notify/journal.py``), never waiting for the daemon's loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["deliver"]

_T = TypeVar("_T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _courier_loop() -> asyncio.AbstractEventLoop:
    """The courier's loop, started on first use (a daemon thread: it holds nothing a
    process exit must wait for; the outbox drains its attempts before stopping)."""
    global _loop
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="pymon-courier", daemon=True).start()
            _loop = loop
        return _loop


async def deliver(work: Coroutine[Any, Any, _T]) -> _T:
    """Run ``work`` on the courier's loop and return its result; cancelling this
    cancels ``work`` there."""
    future = asyncio.run_coroutine_threadsafe(work, _courier_loop())
    return await asyncio.wrap_future(future)
