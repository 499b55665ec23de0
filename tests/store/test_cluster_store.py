"""The cluster's tables on SqlStore: nodes, shard leases, epochs and fenced writes,
on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from pymon.errors import Fenced, StoreError
from pymon.model import Event, EventKind, ServiceState, Status
from pymon.store.base import Fence, Lease, NodeRecord
from pymon.store.sql import SqlStore
from tests.store.test_sql_store import T0, result


def state(name: str, seq: int, status: Status = Status.OK) -> ServiceState:
    return ServiceState(
        name=name,
        status=status,
        message=f"{name} run {seq}",
        last_check=T0 + seq,
        seq=seq,
    )


def event(service: str, seq: int, status: Status = Status.OK) -> Event:
    return Event(
        service=service,
        kind=EventKind.CHANGED,
        at=T0 + seq,
        status=status,
        previous=Status.UNKNOWN,
        message=f"{service} changed at {seq}",
    )


def node(name: str, heartbeat_at: float = T0, **kw: object) -> NodeRecord:
    fields: dict[str, object] = {
        "host": f"{name}.example.org",
        "pid": 4242,
        "location": "rack 7 ✓",
        "config_checksum": "ab" * 32,
        "started_at": T0 - 60.25,
        "checks_per_s": 12.5,
        "web": "http://127.0.0.1:8080",
    }
    fields.update(kw)
    return NodeRecord(name=name, heartbeat_at=heartbeat_at, **fields)  # type: ignore[arg-type]


async def owners(store: SqlStore) -> dict[int, str | None]:
    return {lease.shard: lease.owner for lease in await store.leases()}


async def epochs(store: SqlStore) -> dict[int, int]:
    return {lease.shard: lease.epoch for lease in await store.leases()}


# -- shards and leases -------------------------------------------------------------------


async def test_add_shards_is_idempotent_and_keeps_leases(store: SqlStore) -> None:
    await store.add_shards(4)
    assert await store.leases() == [Lease(s, None, 0.0, 0) for s in range(4)]
    await store.add_shards(4)
    assert await store.leases() == [Lease(s, None, 0.0, 0) for s in range(4)]

    assert await store.claim_shards("a", [1], T0, T0 + 10) == {1: 1}
    await store.add_shards(6)  # more shards: the new ones only, the held one kept
    assert await store.leases() == [
        Lease(0, None, 0.0, 0),
        Lease(1, "a", T0 + 10, 1),
        *(Lease(s, None, 0.0, 0) for s in range(2, 6)),
    ]


async def test_claim_takes_only_free_or_lapsed_shards_and_raises_the_epoch(
    store: SqlStore,
) -> None:
    await store.add_shards(4)
    assert await store.claim_shards("a", [0, 1], T0, T0 + 10) == {0: 1, 1: 1}
    # a's leases hold until T0 + 10: b gets only the free one.
    assert await store.claim_shards("b", [0, 1, 2], T0 + 5, T0 + 15) == {2: 1}
    # A lease ending exactly now is not lapsed yet.
    assert await store.claim_shards("b", [0, 1], T0 + 10, T0 + 20) == {}
    assert await owners(store) == {0: "a", 1: "a", 2: "b", 3: None}
    # Past it, b takes them, and each epoch rises.
    assert await store.claim_shards("b", [0, 1], T0 + 10.5, T0 + 20) == {0: 2, 1: 2}
    assert await store.leases() == [
        Lease(0, "b", T0 + 20, 2),
        Lease(1, "b", T0 + 20, 2),
        Lease(2, "b", T0 + 15, 1),
        Lease(3, None, 0.0, 0),
    ]
    assert await store.claim_shards("b", [], T0, T0 + 20) == {}


async def test_reclaiming_ones_own_lapsed_shard_raises_its_epoch(store: SqlStore) -> None:
    await store.add_shards(1)
    assert await store.claim_shards("a", [0], T0, T0 + 10) == {0: 1}
    assert await store.claim_shards("a", [0], T0 + 11, T0 + 21) == {0: 2}


@pytest.mark.parametrize("round_", range(5))
async def test_two_owners_claiming_at_once_get_each_shard_exactly_once(
    store: SqlStore, round_: int
) -> None:
    shards = list(range(32))
    await store.add_shards(len(shards))
    got_a, got_b = await asyncio.gather(
        store.claim_shards("a", shards, T0, T0 + 10),
        store.claim_shards("b", shards[::-1], T0, T0 + 10),
    )
    assert not set(got_a) & set(got_b)
    assert set(got_a) | set(got_b) == set(shards)
    held = await owners(store)
    assert {s for s, o in held.items() if o == "a"} == set(got_a)
    assert {s for s, o in held.items() if o == "b"} == set(got_b)
    assert set(got_a.values()) | set(got_b.values()) == {1}


async def test_keep_leases_beats_and_returns_what_the_owner_holds(store: SqlStore) -> None:
    await store.add_shards(6)
    assert await store.keep_leases(node("a", T0 + 3), T0 + 10) == {}
    assert await store.nodes() == [node("a", T0 + 3)]
    await store.claim_shards("a", [0, 1, 2], T0, T0 + 10)
    await store.claim_shards("b", [3, 4], T0, T0 + 10)
    await store.claim_shards("a", [2], T0 + 11, T0 + 21)  # its own, lapsed: epoch 2
    assert await store.keep_leases(node("a"), T0 + 30) == {0: 1, 1: 1, 2: 2}
    assert await store.keep_leases(node("b"), T0 + 25) == {3: 1, 4: 1}
    assert await store.leases() == [
        Lease(0, "a", T0 + 30, 1),
        Lease(1, "a", T0 + 30, 1),
        Lease(2, "a", T0 + 30, 2),
        Lease(3, "b", T0 + 25, 1),
        Lease(4, "b", T0 + 25, 1),
        Lease(5, None, 0.0, 0),
    ]
    # Renewing keeps every epoch.
    assert await store.keep_leases(node("a"), T0 + 40) == {0: 1, 1: 1, 2: 2}


async def test_a_sqlite_files_leases_are_renewed_while_the_event_loop_is_busy(
    tmp_path: Path,
) -> None:
    # An overloaded node's loop answers a second late; the renewal must not wait for
    # it (through the async driver it took 3-5 s and the node lost its shards).
    db = tmp_path / "pymon.db"
    store = SqlStore(f"sqlite:///{db}")
    await store.open()
    try:
        await store.add_shards(2)
        await store.claim_shards("a", [0, 1], T0, T0 + 10)
        keeping = asyncio.create_task(store.keep_leases(node("a", T0 + 5), T0 + 15))
        await asyncio.sleep(0)  # the renewal is on its way; from here the loop is held
        reader = sqlite3.connect(db)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                until = reader.execute("SELECT min(lease_until) FROM shards").fetchone()[0]
                if until == T0 + 15:
                    break
            beat = reader.execute("SELECT heartbeat_at FROM nodes WHERE name = 'a'").fetchone()
        finally:
            reader.close()
        assert until == T0 + 15 and beat == (T0 + 5,)
        assert await keeping == {0: 1, 1: 1}
    finally:
        await store.close()


async def test_release_frees_at_once_and_only_ones_own(store: SqlStore) -> None:
    await store.add_shards(4)
    await store.claim_shards("a", [0, 1, 2], T0, T0 + 10)
    await store.claim_shards("b", [3], T0, T0 + 10)
    await store.release_shards("a", [1, 2, 3])  # 3 is b's: left alone
    await store.release_shards("a", [])
    assert await store.leases() == [
        Lease(0, "a", T0 + 10, 1),
        Lease(1, None, 0.0, 1),
        Lease(2, None, 0.0, 1),
        Lease(3, "b", T0 + 10, 1),
    ]
    # Well within a's former lease, b takes them.
    assert await store.claim_shards("b", [1, 2], T0 + 1, T0 + 11) == {1: 2, 2: 2}
    assert await store.keep_leases(node("a"), T0 + 12) == {0: 1}


# -- nodes -------------------------------------------------------------------------------


async def test_beat_and_nodes_round_trip(store: SqlStore) -> None:
    assert await store.nodes() == []
    b = node("b", checks_per_s=0.0, web="", location="")
    a = node("a")
    await store.keep_leases(b, 0.0)
    await store.keep_leases(a, 0.0)
    assert await store.nodes() == [a, b]  # by name

    newer = node("a", heartbeat_at=T0 + 2.5, checks_per_s=99.75)
    await store.keep_leases(newer, 0.0)
    assert await store.nodes() == [newer, b]


async def test_node_stopped_sets_stopped_at(store: SqlStore) -> None:
    await store.keep_leases(node("a"), 0.0)
    await store.keep_leases(node("b"), 0.0)
    await store.node_stopped("a", T0 + 7.125)
    await store.node_stopped("nobody", T0 + 8)
    found = {n.name: n for n in await store.nodes()}
    assert set(found) == {"a", "b"}
    assert found["a"].stopped_at == T0 + 7.125
    assert found["a"] == node("a", stopped_at=T0 + 7.125)
    assert found["b"].stopped_at is None


# -- fenced writes -----------------------------------------------------------------------

SHARD_OF = {"web": 0, "db": 1}


async def test_a_fenced_write_lands_while_the_epochs_hold(store: SqlStore) -> None:
    await store.add_shards(2)
    await store.keep_leases(node("a"), 0.0)
    held = await store.claim_shards("a", [0, 1], T0, T0 + 10)
    fence = Fence("a", held, SHARD_OF)
    await store.write(
        [state("web", 1), state("db", 1)],
        [result("web", 1), result("db", 1)],
        [event("web", 1)],
        fence=fence,
    )
    states = await store.load_states()
    assert states["web"] == state("web", 1)
    assert states["db"] == state("db", 1)
    assert await store.history("web") == [result("web", 1)]
    assert [e.service for e in await store.events()] == ["web"]


async def test_a_write_for_a_shard_taken_after_a_lapse_is_fenced_and_writes_nothing(
    store: SqlStore,
) -> None:
    await store.add_shards(2)
    await store.keep_leases(node("a"), 0.0)
    await store.keep_leases(node("b"), 0.0)
    stale = Fence("a", await store.claim_shards("a", [0, 1], T0, T0 + 10), SHARD_OF)
    await store.write([state("web", 1), state("db", 1)], [result("web", 1)], [], fence=stale)
    # a was paused past its lease; b takes shard 0.
    assert await store.claim_shards("b", [0], T0 + 11, T0 + 21) == {0: 2}

    with pytest.raises(Fenced) as caught:
        await store.write(
            [state("web", 2), state("db", 2), state("other", 2)],
            [result("web", 2), result("db", 2), result("other", 2)],
            [event("web", 2), event("db", 2), event("other", 2)],
            fence=stale,
        )
    assert caught.value.shards == frozenset({0})
    assert isinstance(caught.value, StoreError)
    # Nothing of the batch landed, not even for the shard a still holds or the
    # unfenced service.
    states = await store.load_states()
    assert states == {"web": state("web", 1), "db": state("db", 1)}
    assert await store.history("web") == [result("web", 1)]
    assert await store.history("db") == []
    assert await store.history("other") == []
    assert await store.events() == []

    # A write for the shard a still holds only lands.
    await store.write([state("db", 3)], [result("db", 3)], [], fence=stale)
    assert (await store.load_states())["db"] == state("db", 3)


async def test_a_write_with_an_old_epoch_is_fenced_even_for_the_same_owner(
    store: SqlStore,
) -> None:
    await store.add_shards(1)
    old = Fence("a", await store.claim_shards("a", [0], T0, T0 + 10), SHARD_OF)
    await store.release_shards("a", [0])
    new = Fence("a", await store.claim_shards("a", [0], T0 + 1, T0 + 11), SHARD_OF)
    assert new.epochs == {0: 2}
    with pytest.raises(Fenced) as caught:
        await store.write([state("web", 1)], [], [], fence=old)
    assert caught.value.shards == frozenset({0})
    await store.write([state("web", 1)], [], [], fence=new)
    assert (await store.load_states())["web"] == state("web", 1)


async def test_a_released_shard_fences_its_former_owner(store: SqlStore) -> None:
    await store.add_shards(2)
    fence = Fence("a", await store.claim_shards("a", [0, 1], T0, T0 + 10), SHARD_OF)
    await store.release_shards("a", [1])
    with pytest.raises(Fenced) as caught:
        await store.write([state("web", 1), state("db", 1)], [], [], fence=fence)
    assert caught.value.shards == frozenset({1})
    assert await store.load_states() == {}


async def test_services_outside_the_shard_map_are_not_fenced(store: SqlStore) -> None:
    await store.add_shards(2)
    stale = Fence("a", await store.claim_shards("a", [0, 1], T0, T0 + 10), SHARD_OF)
    await store.claim_shards("b", [0, 1], T0 + 11, T0 + 21)
    await store.write([state("other", 1)], [result("other", 1)], [event("other", 1)], fence=stale)
    assert await store.load_states() == {"other": state("other", 1)}
    assert await store.history("other") == [result("other", 1)]
    assert [e.service for e in await store.events()] == ["other"]
    # A fence that knows no shard holds nothing back either.
    nobody = Fence("z", {}, {})
    await store.write([state("web", 5)], [], [], fence=nobody)
    assert (await store.load_states())["web"] == state("web", 5)


async def test_a_write_for_a_shard_missing_from_the_fence_is_fenced(store: SqlStore) -> None:
    # a lost shard 0 (Membership.step dropped it from its epochs) but its writer
    # still had web's batch queued; b holds shard 0 now.
    await store.add_shards(2)
    assert await store.claim_shards("b", [0], T0, T0 + 10) == {0: 1}
    after_loss = Fence("a", {}, SHARD_OF)
    with pytest.raises(Fenced) as caught:
        await store.write([state("web", 9)], [result("web", 9)], [], fence=after_loss)
    assert caught.value.shards == frozenset({0})
    assert await store.load_states() == {}


async def test_the_change_mark_moves_with_a_transition_only(store_url: str) -> None:
    # Two stores on one database: what one commits, the other hears (PostgreSQL's
    # NOTIFY reaches another connection; SQLite's counter is read by any).
    writer, reader = SqlStore(store_url), SqlStore(store_url)
    await writer.open()
    await reader.open()
    try:
        before = await reader.change_mark()
        await asyncio.sleep(0)  # the listener, where there is one, settles first
        settled = await wait_steady(reader)
        await writer.write([state("web", 1)], [result("web", 1)], [])
        assert await wait_steady(reader) == settled, "a write without a transition moved it"
        await writer.write([state("web", 2)], [result("web", 2)], [event("web", 2)])
        async with asyncio.timeout(10):
            while await reader.change_mark() == settled:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        assert before <= settled
    finally:
        await writer.close()
        await reader.close()


async def wait_steady(store: SqlStore) -> int:
    """The change mark once it stops moving (a listener that just connected may
    count its own start once)."""
    last = await store.change_mark()
    for _ in range(50):
        await asyncio.sleep(0.02)
        now = await store.change_mark()
        if now == last:
            return now
        last = now
    raise AssertionError("the change mark never settled")
