"""In-process fan-out of what happens in the daemon to whoever listens.

A :class:`Bus` has two kinds of listeners, for two kinds of needs:

* **listeners** (:meth:`Bus.listen`): plain callbacks, called inline by
  :meth:`Bus.publish`, in the order they were registered, for every item. Nothing
  is ever dropped: the publisher waits for them by construction, so they must be
  quick and must not block (the store's listener only queues into the batch
  writer). One that raises is logged and the others still run.
* **subscriptions** (:meth:`Bus.subscribe`): bounded async queues, for consumers
  that may fall behind (the web stream). A subscriber that lets its queue fill is
  *dropped* (its iteration ends; it must subscribe again and resync from the
  current state) rather than slowing the checks down.

Publishing never blocks on a subscriber and never raises. With nobody listening a
publish is two length tests.

Everything runs on the event loop's thread; nothing here is thread-safe, and
nothing needs to be.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Bus", "Subscription"]

log = logging.getLogger("pymon.bus")

T = TypeVar("T")


class Subscription(Generic[T]):
    """One listener's bounded queue; async-iterable, and a context manager that unsubscribes.

    Iteration ends when the subscription is closed or dropped (``dropped`` tells
    which). :meth:`batch` takes everything pending at once, for consumers that
    would rather handle a burst in one go than item by item.
    """

    __slots__ = ("_bus", "_items", "_waiter", "closed", "dropped", "maxsize")

    def __init__(self, bus: Bus[T], maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._bus = bus
        self._items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.maxsize = maxsize
        self.closed = False
        self.dropped = False

    def __len__(self) -> int:
        return len(self._items)

    def _offer(self, item: T) -> None:
        if len(self._items) >= self.maxsize:
            self.dropped = True
            log.info("bus: a subscriber fell %d items behind and was dropped", self.maxsize)
            self._end()
            return
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self) -> None:
        """Unsubscribe; a pending wait returns and iteration ends. Idempotent."""
        self._end()

    def _end(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._items.clear()
        self._bus._remove(self)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, within: float | None = None) -> None:
        """Wait until an item is pending, the subscription ends, or ``within`` seconds pass.

        (Cheaper than ``asyncio.timeout`` around each item: one timer per wait.)
        """
        if self._items or self.closed:
            return
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        timer = None if within is None else loop.call_later(within, _wake, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def batch(self, within: float | None = None) -> list[T]:
        """Every pending item, waiting up to ``within`` seconds (None: forever) for one.

        Returns an empty list on timeout and once closed or dropped (see ``closed``).
        """
        await self.wait(within)
        items = list(self._items)
        self._items.clear()
        return items

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            if self.closed:
                raise StopAsyncIteration
            await self.wait()
        return self._items.popleft()

    async def __aenter__(self) -> Subscription[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Bus(Generic[T]):
    """Fan-out of items of type ``T`` to every listener, then every subscription, in order."""

    __slots__ = ("_listeners", "_routes", "_subs")

    def __init__(self) -> None:
        self._listeners: tuple[tuple[Callable[[T], None], tuple[type, ...]], ...] = ()
        # Per item type, the listeners that take it, worked out on its first publish
        # (and again after a change of listeners): a check publishes three items,
        # and most listeners want none of them.
        self._routes: dict[type, tuple[Callable[[T], None], ...]] = {}
        self._subs: list[Subscription[T]] = []

    def __len__(self) -> int:
        """The number of live subscriptions (listeners are not counted)."""
        return len(self._subs)

    @property
    def listeners(self) -> int:
        """The number of synchronous listeners."""
        return len(self._listeners)

    def listen(self, callback: Callable[[T], None], *types: type) -> Callable[[], None]:
        """Call ``callback`` inline with every item published from now on; never dropped.

        With ``types``, only items that are instances of one of them. Listeners run
        in the order they were added. Returns a function that removes this listener.
        """
        entry = (callback, types)
        self._listeners = (*self._listeners, entry)
        self._routes.clear()

        def remove() -> None:
            listeners = list(self._listeners)
            with contextlib.suppress(ValueError):
                listeners.remove(entry)
            self._listeners = tuple(listeners)
            self._routes.clear()

        return remove

    def subscribe(self, maxsize: int = 1000) -> Subscription[T]:
        """A new subscription that receives every item published from now on."""
        sub = Subscription(self, maxsize)
        self._subs.append(sub)
        return sub

    def publish(self, item: T) -> None:
        """Call every listener with ``item``, then hand it to every subscriber (a full one
        is dropped). Never waits for a subscriber and never raises."""
        kind = type(item)
        route = self._routes.get(kind)
        if route is None:
            route = tuple(
                cb for cb, types in self._listeners if not types or issubclass(kind, types)
            )
            self._routes[kind] = route
        for listener in route:
            try:
                listener(item)
            except Exception:
                # The others must still see the item: one broken listener (a metric,
                # a log line) must not cost the store its write.
                log.exception("bus: a listener failed on %s", type(item).__name__)
        if not self._subs:
            return
        # A copy: dropping a subscriber removes it from the list while we walk it.
        for sub in tuple(self._subs):
            try:
                sub._offer(item)
            except Exception:
                log.exception("bus: a subscriber failed to take an item; dropped")
                sub.dropped = True
                sub.close()

    def close_all(self) -> None:
        """End every subscription (each subscriber sees its iteration end)."""
        for sub in tuple(self._subs):
            sub.close()

    def _remove(self, sub: Subscription[T]) -> None:
        with contextlib.suppress(ValueError):
            self._subs.remove(sub)
