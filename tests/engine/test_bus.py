"""The bus: fan-out in order, publishing never blocks or raises, a slow subscriber is dropped."""

from __future__ import annotations

import asyncio

import pytest

from pymon.engine.bus import Bus
from pymon.events import BusItem, StateChanged, StatusChanged
from pymon.model import Event, EventKind, Status


def event(service: str) -> Event:
    return Event(service, EventKind.CHANGED, 1.0, Status.FAILED, Status.OK, "refused")


async def test_every_subscriber_gets_every_item_in_order() -> None:
    bus: Bus[int] = Bus()
    first, second = bus.subscribe(), bus.subscribe()
    for n in range(5):
        bus.publish(n)
    assert await first.batch() == [0, 1, 2, 3, 4]
    assert await second.batch() == [0, 1, 2, 3, 4]


async def test_publishing_without_subscribers_does_nothing() -> None:
    bus: Bus[int] = Bus()
    bus.publish(1)
    sub = bus.subscribe()
    bus.publish(2)
    assert await sub.batch() == [2]


async def test_a_subscriber_is_woken_by_a_publish() -> None:
    bus: Bus[StateChanged] = Bus()
    sub = bus.subscribe()
    waiting = asyncio.create_task(anext(sub))
    await asyncio.sleep(0)  # let it park on its waiter
    bus.publish(StateChanged("web"))
    assert await asyncio.wait_for(waiting, 5) == StateChanged("web")


async def test_typed_items_carry_the_event() -> None:
    bus: Bus[BusItem] = Bus()
    sub = bus.subscribe()
    bus.publish(StatusChanged("db", event("db")))
    (item,) = await sub.batch()
    assert isinstance(item, StatusChanged) and item.event.service == "db"


async def test_batch_times_out_empty() -> None:
    sub = Bus[int]().subscribe()
    assert await sub.batch(within=0.01) == []
    assert not sub.closed


async def test_overflow_drops_the_slow_subscriber_only() -> None:
    bus: Bus[int] = Bus()
    slow, fast = bus.subscribe(maxsize=3), bus.subscribe(maxsize=3)
    for n in range(3):
        bus.publish(n)
        assert await fast.batch() == [n]
    bus.publish(3)  # the slow one holds 3 already: no room
    assert slow.dropped and slow.closed
    assert [item async for item in slow] == []  # its iteration ends at once
    assert await fast.batch() == [3]
    assert len(bus) == 1


async def test_publish_never_blocks_on_a_full_subscriber() -> None:
    bus: Bus[int] = Bus()
    sub = bus.subscribe(maxsize=10)
    for n in range(10_000):  # synchronous: would hang or raise if it waited for room
        bus.publish(n)
    assert sub.dropped
    assert len(bus) == 0


async def test_a_dropped_subscriber_wakes_from_its_wait() -> None:
    bus: Bus[int] = Bus()
    sub = bus.subscribe(maxsize=1)
    items: list[int] = []

    async def consume() -> None:
        items.extend([item async for item in sub])

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    # Two publishes in one go: the consumer has no chance to take the first.
    bus.publish(1)
    bus.publish(2)
    await asyncio.wait_for(task, 5)
    assert sub.dropped and items == []


async def test_unsubscribing_ends_iteration_and_stops_delivery() -> None:
    bus: Bus[int] = Bus()
    async with bus.subscribe() as sub:
        bus.publish(1)
        assert await sub.batch() == [1]
    assert sub.closed and not sub.dropped
    assert len(bus) == 0
    bus.publish(2)
    assert [item async for item in sub] == []


async def test_close_wakes_a_waiting_subscriber() -> None:
    bus: Bus[int] = Bus()
    sub = bus.subscribe()
    task = asyncio.create_task(sub.batch())
    await asyncio.sleep(0)
    sub.close()
    assert await asyncio.wait_for(task, 5) == []


async def test_close_all_ends_every_subscription() -> None:
    bus: Bus[int] = Bus()
    subs = [bus.subscribe() for _ in range(3)]
    bus.close_all()
    assert all(s.closed for s in subs) and len(bus) == 0


async def test_a_subscriber_that_fails_is_dropped_and_the_others_still_get_the_item() -> None:
    class Broken(list[int]):
        def append(self, item: int) -> None:
            raise RuntimeError("boom")

    bus: Bus[int] = Bus()
    broken, healthy = bus.subscribe(), bus.subscribe()
    broken._items = Broken()  # type: ignore[assignment]
    bus.publish(7)
    assert broken.dropped
    assert await healthy.batch() == [7]


def test_a_listener_given_types_hears_only_instances_of_them() -> None:
    bus: Bus[object] = Bus()
    numbers: list[object] = []
    bus.listen(numbers.append, int)
    for item in (1, "a", True, 2.5):
        bus.publish(item)
    assert numbers == [1, True]  # bool is an int


def test_listeners_added_or_removed_later_count_from_the_next_item() -> None:
    bus: Bus[object] = Bus()
    early: list[object] = []
    late: list[object] = []
    remove = bus.listen(early.append, str)
    bus.publish("a")
    bus.listen(late.append, str)
    remove()
    bus.publish("b")
    assert (early, late) == (["a"], ["b"])


def test_maxsize_must_be_positive() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        Bus[int]().subscribe(maxsize=0)
