"""Shards, fair shares and the heartbeat plan (pure), and Membership on a real SQLite store."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from pymon.checks.tcp import TcpSpec
from pymon.config.schema import ClusterConfig, ServiceConfig
from pymon.engine.cluster import (
    Membership,
    Plan,
    cluster_checksum,
    fair_share,
    gone_here,
    live_nodes,
    plan,
    shard_map,
    shard_of,
)
from pymon.errors import Fenced, StoreError
from pymon.programs import process_alive
from pymon.store.base import Lease, NodeRecord
from pymon.store.sql import SqlStore
from tests.support.clock import FakeClock
from tests.support.waiting import wait_for

NOW = 1_700_000_000.0


def service(name: str, depends_on: Sequence[str] = ()) -> ServiceConfig:
    return ServiceConfig(
        name=name,
        type="tcp",
        check=TcpSpec(host="127.0.0.1", port=1),
        depends_on=list(depends_on),
    )


def leases(owners: Sequence[str | None], until: float = NOW + 10) -> list[Lease]:
    """One lease per shard, in order, held by ``owners[shard]`` until ``until``."""
    return [Lease(shard, owner, until if owner else 0.0, 1) for shard, owner in enumerate(owners)]


# -- shard_of, shard_map --------------------------------------------------------------


def test_shard_of_is_crc32_and_stable() -> None:
    # zlib.crc32(b"web") == 365508689: the same on every node, run and Python version.
    assert shard_of("web", 256) == 365508689 % 256 == 81
    assert shard_of("web", 8) == 1
    assert shard_of("db", 256) == 40


@pytest.mark.parametrize("shards", [1, 2, 7, 256, 4096])
def test_shard_of_is_in_range(shards: int) -> None:
    for n in range(200):
        assert 0 <= shard_of(f"service-{n}", shards) < shards


def test_shard_map_places_a_child_in_its_parents_shard() -> None:
    names = [f"parent-{n}" for n in range(20)]
    services = [service(n) for n in names]
    services += [service(f"child-of-{n}", depends_on=[n]) for n in names]
    services += [service(f"grandchild-of-{n}", depends_on=[f"child-of-{n}"]) for n in names]
    placed = shard_map(services, 16)
    assert set(placed) == {s.name for s in services}
    for n in names:
        assert placed[n] == shard_of(n, 16)
        assert placed[f"child-of-{n}"] == placed[n]
        assert placed[f"grandchild-of-{n}"] == placed[n]
    # Not all in one shard: the parents do spread.
    assert len({placed[n] for n in names}) > 1


def test_shard_map_uses_the_first_root_by_name_and_ignores_unknown_parents() -> None:
    services = [
        service("zeta"),
        service("alpha"),
        service("child", depends_on=["zeta", "alpha"]),
        service("orphan", depends_on=["not-configured"]),
    ]
    placed = shard_map(services, 4096)
    assert placed["child"] == shard_of("alpha", 4096)
    assert placed["orphan"] == shard_of("orphan", 4096)


def test_shard_map_survives_a_dependency_cycle() -> None:
    services = [service("a", depends_on=["b"]), service("b", depends_on=["a"])]
    placed = shard_map(services, 64)
    assert set(placed) == {"a", "b"}


# -- live_nodes, fair_share --------------------------------------------------------------


def node(name: str, heartbeat_at: float, stopped_at: float | None = None) -> NodeRecord:
    return NodeRecord(
        name=name,
        host="host",
        pid=1,
        location="",
        config_checksum="sum",
        started_at=NOW - 100,
        heartbeat_at=heartbeat_at,
        stopped_at=stopped_at,
    )


def test_live_nodes_are_recent_and_not_stopped_sorted() -> None:
    nodes = [
        node("c", NOW - 1),
        node("a", NOW - 10),  # exactly at the lease: still live
        node("b", NOW - 10.5),  # lapsed
        node("d", NOW, stopped_at=NOW),
    ]
    assert live_nodes(nodes, NOW, 10) == ["a", "c"]


@pytest.mark.parametrize("shards", [1, 2, 3, 8, 10, 255, 256])
@pytest.mark.parametrize("count", [1, 2, 3, 5, 7])
def test_fair_shares_sum_to_the_shards_and_differ_by_at_most_one(shards: int, count: int) -> None:
    live = [f"node-{n}" for n in range(count)]
    shares = [fair_share(me, live, shards) for me in live]
    assert sum(shares) == shards
    assert max(shares) - min(shares) <= 1
    # The extra ones go to the first names.
    assert shares == sorted(shares, reverse=True)


def test_fair_share_counts_me_even_when_not_yet_live() -> None:
    assert fair_share("b", ["a"], 8) == 4
    assert fair_share("a", [], 8) == 8


# -- plan --------------------------------------------------------------------------------


def test_a_lone_node_claims_every_free_shard() -> None:
    assert plan("a", ["a"], leases([None] * 8), NOW) == Plan(claim=tuple(range(8)))


def test_no_shards_no_plan() -> None:
    assert plan("a", ["a"], [], NOW) == Plan()


def test_the_holder_releases_its_highest_surplus_to_a_newcomer() -> None:
    held = leases(["a"] * 8)
    assert plan("a", ["a", "b"], held, NOW) == Plan(release=(4, 5, 6, 7))
    # The newcomer waits: nothing is free yet.
    assert plan("b", ["a", "b"], held, NOW) == Plan()
    # Once given up, the newcomer takes them.
    after = leases(["a"] * 4 + [None] * 4)
    assert plan("b", ["a", "b"], after, NOW) == Plan(claim=(4, 5, 6, 7))
    assert plan("a", ["a", "b"], after, NOW) == Plan()


def test_uneven_shares_release_only_the_surplus() -> None:
    held = leases(["b"] * 10)
    # Three live nodes, ten shards: a gets 4, b and c 3 each.
    assert plan("b", ["a", "b", "c"], held, NOW) == Plan(release=(3, 4, 5, 6, 7, 8, 9))
    assert plan("a", ["a", "b", "c"], leases(["b"] * 3 + [None] * 7), NOW) == Plan(
        claim=(3, 4, 5, 6)
    )


def test_a_node_at_its_share_does_nothing() -> None:
    held = leases(["a"] * 4 + ["b"] * 4)
    assert plan("a", ["a", "b"], held, NOW) == Plan()
    assert plan("b", ["a", "b"], held, NOW) == Plan()


def test_a_node_one_over_its_share_releases_its_highest() -> None:
    held = leases(["a"] * 5 + ["b"] * 3)
    assert plan("a", ["a", "b"], held, NOW) == Plan(release=(4,))
    assert plan("b", ["a", "b"], held, NOW) == Plan()


def test_lapsed_leases_are_claimable() -> None:
    # b is live but did not renew: its lapsed leases are free, up to a's share.
    lapsed = [Lease(s, "b", NOW - 1, 3) for s in range(4)]
    assert plan("a", ["a", "b"], lapsed, NOW) == Plan(claim=(0, 1))
    assert plan("a", ["a"], lapsed, NOW) == Plan(claim=(0, 1, 2, 3))


def test_a_lease_ending_right_now_is_not_yet_claimable() -> None:
    # claim_shards takes a lease only when it ended before now (lease_until < now).
    ending = [Lease(0, "b", NOW, 1), Lease(1, None, 0.0, 0)]
    assert plan("a", ["a", "b"], ending, NOW) == Plan(claim=(1,))


def test_shards_of_dead_owners_are_claimable() -> None:
    # c holds valid leases but did not beat: it is not live, its shards are free.
    held = [Lease(s, "c", NOW + 100, 2) for s in range(4)]
    assert plan("a", ["a"], held, NOW) == Plan(claim=(0, 1, 2, 3))
    assert plan("a", ["a", "b"], held, NOW) == Plan(claim=(0, 1))


def test_claims_stop_at_the_fair_share() -> None:
    held = leases(["a"] + [None] * 7)
    assert plan("a", ["a", "b"], held, NOW) == Plan(claim=(1, 2, 3))


# -- Membership on a real store ----------------------------------------------------------

CONFIG = ClusterConfig(heartbeat=1.0, lease=5.0, shards=8)


class Changes:
    """A ``changed`` callback recording its calls, and who held the lost shards then."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.calls: list[tuple[set[int], set[int]]] = []
        self.owners_when_lost: list[dict[int, str | None]] = []

    async def __call__(self, gained: set[int], lost: set[int]) -> None:
        self.calls.append((set(gained), set(lost)))
        if lost:
            now = {lease.shard: lease.owner for lease in await self.store.leases()}
            self.owners_when_lost.append({s: now[s] for s in lost})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    sql_store = SqlStore(f"sqlite:///{tmp_path}/data/pymon.db")
    await sql_store.open()
    try:
        yield sql_store
    finally:
        await sql_store.close()


def member(
    store: SqlStore, clock: FakeClock, name: str, checksum: str = "sum"
) -> tuple[Membership, Changes]:
    changes = Changes(store)
    me = NodeRecord(
        name=name,
        # One host each: on one host, a node whose pid is gone is taken over at once.
        host=f"host-{name}",
        pid=1,
        location="",
        config_checksum=checksum,
        started_at=clock.time(),
        heartbeat_at=0.0,
    )
    return Membership(store, CONFIG, me, changes, clock=clock), changes


async def owners(store: SqlStore) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for lease in await store.leases():
        found.setdefault(lease.owner or "", set()).add(lease.shard)
    return found


async def test_two_members_split_the_shards(store: SqlStore) -> None:
    clock = FakeClock()
    a, a_changes = member(store, clock, "a")
    b, b_changes = member(store, clock, "b")

    await a.start({})
    assert a.epochs == dict.fromkeys(range(8), 1)
    assert a_changes.calls == [(set(range(8)), set())]
    assert await owners(store) == {"a": set(range(8))}

    await clock.advance(1)
    await b.start({})
    assert b.epochs == {}  # nothing free yet
    assert b_changes.calls == []

    await clock.advance(0.5)
    await a.step()
    moved = {4, 5, 6, 7}
    assert a_changes.calls[-1] == (set(), moved)
    # Told before the shards went: a still held them when its services were stopped.
    assert a_changes.owners_when_lost == [dict.fromkeys(moved, "a")]
    assert a.epochs == dict.fromkeys(range(4), 1)
    assert await owners(store) == {"a": {0, 1, 2, 3}, "": moved}

    await clock.advance(0.5)
    await b.step()
    assert b_changes.calls == [(moved, set())]
    assert a.epochs == dict.fromkeys(range(4), 1)
    assert b.epochs == dict.fromkeys(moved, 2)  # the epochs of the moved shards rose
    assert {lease.shard: lease.epoch for lease in await store.leases()} == {
        **dict.fromkeys(range(4), 1),
        **dict.fromkeys(moved, 2),
    }

    # Steady: further steps change nothing.
    await clock.advance(1)
    await a.step()
    await b.step()
    assert len(a_changes.calls) == 2
    assert len(b_changes.calls) == 1
    assert await owners(store) == {"a": {0, 1, 2, 3}, "b": moved}


async def test_services_follow_the_held_shards(store: SqlStore) -> None:
    clock = FakeClock()
    a, _ = member(store, clock, "a")
    placed = {"web": shard_of("web", 8), "db": shard_of("db", 8)}
    await a.start(placed)
    assert a.services(["web", "db", "unplaced"]) == {"web", "db"}
    fence = a.fence()
    assert fence.owner == "a"
    assert fence.epochs == dict.fromkeys(range(8), 1)
    assert dict(fence.shard_of) == placed


async def test_leave_hands_everything_over_at_the_next_step(store: SqlStore) -> None:
    clock = FakeClock()
    a, _ = member(store, clock, "a")
    b, b_changes = member(store, clock, "b")
    await a.start({})
    await b.start({})
    await a.step()
    await b.step()
    assert set(b.epochs) == {4, 5, 6, 7}

    await clock.advance(1)
    await a.leave()
    assert a.epochs == {}
    stopped = {n.name: n.stopped_at for n in await store.nodes()}
    assert stopped == {"a": clock.time(), "b": None}
    assert await owners(store) == {"": {0, 1, 2, 3}, "b": {4, 5, 6, 7}}

    # Well within a's lease: a clean stop needs no waiting.
    await b.step()
    assert b_changes.calls[-1] == ({0, 1, 2, 3}, set())
    assert b.epochs == {**dict.fromkeys(range(4), 2), **dict.fromkeys(range(4, 8), 2)}
    assert await owners(store) == {"b": set(range(8))}


async def test_a_lapsed_member_loses_its_shards_and_is_told(store: SqlStore) -> None:
    clock = FakeClock()
    a, a_changes = member(store, clock, "a")
    b, b_changes = member(store, clock, "b")
    await a.start({})
    await b.start({})
    await a.step()
    await b.step()
    a_shards = {0, 1, 2, 3}
    assert set(a.epochs) == a_shards

    # a is paused past its lease; b keeps beating.
    await clock.advance(CONFIG.lease + 1)
    await b.step()
    assert b_changes.calls[-1] == (a_shards, set())
    assert b.epochs == dict.fromkeys(range(8), 2)
    assert await owners(store) == {"b": set(range(8))}
    # a has not noticed yet: it still believes it holds them.
    assert set(a.epochs) == a_shards

    calls_before = len(a_changes.calls)
    await a.step()
    assert a_changes.calls[calls_before] == (set(), a_shards)
    assert a.epochs == {}
    # b holds its share's worth and more, a is live again and short, so b gives back
    # at its next step and a claims at its own, with higher epochs still.
    await b.step()
    await a.step()
    assert set(b.epochs) == {0, 1, 2, 3}
    assert a.epochs == dict.fromkeys(range(4, 8), 3)
    assert a_changes.calls[-1] == ({4, 5, 6, 7}, set())


async def test_lost_from_a_write_is_handed_over_at_the_next_step(store: SqlStore) -> None:
    clock = FakeClock()
    a, a_changes = member(store, clock, "a")
    await a.start({})
    a.lost(frozenset({2, 3}))
    assert set(a.epochs) == {0, 1, 4, 5, 6, 7}
    await a.step()
    # The shards are reported lost, even though the store still has a holding them.
    assert (set(), {2, 3}) in a_changes.calls


async def test_a_flush_on_loss_does_not_overwrite_the_new_owner(store: SqlStore) -> None:
    from pymon.model import ServiceState, Status

    clock = FakeClock()
    placed = {"web": shard_of("web", 8)}
    refused: list[frozenset[int]] = []
    a_node = NodeRecord("a", "host", 1, "", "sum", clock.time(), 0.0)
    b_node = NodeRecord("b", "host", 2, "", "sum", clock.time(), 0.0)

    async def a_changed(gained: set[int], lost: set[int]) -> None:
        if placed["web"] in lost:
            # What Daemon._handover does: flush the queued rows of the lost services.
            try:
                await store.write(
                    [ServiceState("web", Status.ERROR, seq=1)], [], [], fence=a.fence()
                )
            except Fenced as exc:
                refused.append(exc.shards)

    async def b_changed(gained: set[int], lost: set[int]) -> None:
        pass

    a = Membership(store, CONFIG, a_node, a_changed, clock=clock)
    b = Membership(store, CONFIG, b_node, b_changed, clock=clock)
    await a.start(placed)
    await clock.advance(CONFIG.lease + 1)
    await b.start(placed)  # a lapsed: b takes every shard
    await store.write([ServiceState("web", Status.OK, seq=5)], [], [], fence=b.fence())
    await a.step()
    assert refused == [frozenset({placed["web"]})]
    assert (await store.load_states())["web"].seq == 5


def test_a_process_is_alive_only_while_it_runs_and_is_the_same_one() -> None:
    assert process_alive(os.getpid(), time.time())
    # This pid started long after "started_at": a later process given a dead one's pid.
    assert not process_alive(os.getpid(), 0.0)
    with subprocess.Popen(["sleep", "60"]) as child:
        child.kill()
        # Killed, not reaped yet: a zombie, gone all the same.
        wait_until = time.monotonic() + 10
        while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < wait_until
            time.sleep(0.01)
        assert not process_alive(child.pid, time.time())
        child.wait()
    assert not process_alive(child.pid, time.time())


def test_nodes_of_this_machine_whose_process_is_gone_are_found() -> None:
    def record(
        name: str, host: str = "h1", pid: int = 1, stopped: float | None = None
    ) -> NodeRecord:
        return NodeRecord(name, host, pid, "", "c", 0.0, 0.0, stopped_at=stopped)

    me = record("me", pid=10)
    nodes = [
        me,
        record("dead", pid=11),
        record("running", pid=12),
        record("stopped", pid=13, stopped=5.0),
        record("elsewhere", host="h2", pid=14),
    ]
    running = {10, 12}
    assert gone_here(nodes, me, lambda pid, _: pid in running) == [nodes[1]]


def test_the_cluster_runs_the_config_most_live_nodes_run_else_the_oldest_nodes() -> None:
    def record(name: str, checksum: str, started_at: float) -> NodeRecord:
        return NodeRecord(name, "h", 1, "", checksum, started_at, 0.0)

    assert cluster_checksum([]) == ""
    two_to_one = [record("a", "new", 3.0), record("b", "old", 1.0), record("c", "new", 2.0)]
    assert cluster_checksum(two_to_one) == "new"
    tie = [record("a", "new", 3.0), record("b", "old", 1.0)]
    assert cluster_checksum(tie) == "old"


async def test_a_node_whose_config_differs_holds_no_shards_until_it_agrees(
    store: SqlStore,
) -> None:
    clock = FakeClock()
    a, _ = member(store, clock, "a")
    await a.start({})
    await clock.advance(0.5)
    b, _ = member(store, clock, "b", checksum="edited")
    await b.start({})
    await a.step()
    await b.step()
    assert b.epochs == {}
    assert b.problem is not None and "differs" in b.problem
    assert await owners(store) == {"a": set(range(8))}
    # b reloads the same file as a: it takes its share.
    b.config_changed("sum")
    await b.step()
    await a.step()
    await b.step()
    assert b.problem is None
    assert len(b.epochs) == 4


async def test_a_reload_during_a_heartbeat_does_not_set_a_node_against_its_old_self(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reload lands while the heartbeat reads the nodes: the row just written still
    # holds the old checksum. The node alone must not see a cluster that disagrees.
    clock = FakeClock()
    a, changes = member(store, clock, "a")
    await a.start({})
    read_nodes = store.nodes

    async def nodes_then_reload() -> list[NodeRecord]:
        found = await read_nodes()
        a.config_changed("edited")
        return found

    monkeypatch.setattr(store, "nodes", nodes_then_reload)
    await clock.advance(1)
    await a.step()
    assert a.problem is None
    assert a.epochs == dict.fromkeys(range(8), 1)
    assert all(lost == set() for _, lost in changes.calls)


async def test_a_sqlite_file_is_refused_to_a_node_of_another_machine(store: SqlStore) -> None:
    clock = FakeClock()
    a, _ = member(store, clock, "a")
    await a.start({})
    b = Membership(
        store,
        CONFIG,
        replace(a.node, name="b", host="elsewhere"),
        Changes(store),
        clock=clock,
        one_machine=True,
    )
    with pytest.raises(StoreError, match="needs PostgreSQL"):
        await b.start({})
    assert await owners(store) == {"a": set(range(8))}


async def test_a_name_taken_by_a_running_node_is_refused(store: SqlStore) -> None:
    clock = FakeClock()
    a, _ = member(store, clock, "a")
    await a.start({})
    twin = Membership(store, CONFIG, replace(a.node, host="elsewhere"), Changes(store), clock=clock)
    with pytest.raises(StoreError, match="already running"):
        await twin.start({})


async def test_a_node_restarted_under_its_name_runs_the_shards_its_earlier_life_held(
    store: SqlStore,
) -> None:
    clock = FakeClock()
    a, _ = member(store, clock, "a")
    await a.start({})
    # The process died (kill -9) and starts again at once, under the same name.
    changes = Changes(store)
    again = Membership(
        store, CONFIG, replace(a.node, pid=2), changes, clock=clock, alive=lambda pid, _: pid == 2
    )
    await again.start({})
    assert changes.calls == [(set(range(8)), set())]
    assert again.epochs == dict.fromkeys(range(8), 2)


async def test_a_stopping_member_renews_but_hands_nothing_over_until_it_leaves(
    store: SqlStore,
) -> None:
    clock = FakeClock()
    a, a_changes = member(store, clock, "a")
    await a.start({})
    b, _ = member(store, clock, "b")
    await b.start({})
    a.hold()  # stopping: its last writes are being flushed
    await clock.advance(CONFIG.lease - 1)
    await a.step()
    await clock.advance(2)
    await b.step()
    assert await owners(store) == {"a": set(range(8))}, "a gave shards up, or they lapsed"
    assert a_changes.calls == [(set(range(8)), set())]
    await a.leave()
    await b.step()
    assert await owners(store) == {"b": set(range(8))}


async def test_a_long_handover_keeps_the_leases_held_alive(store: SqlStore) -> None:
    # a's first handover (loading its services) outlasts the lease: it goes on beating
    # and renewing meanwhile, so b does not take a's shards for those of a gone node.
    clock = FakeClock()
    loading = asyncio.Event()
    loaded = asyncio.Event()

    async def slow(gained: set[int], lost: set[int]) -> None:
        loading.set()
        await loaded.wait()

    me = NodeRecord("a", "host-a", 1, "", "sum", clock.time(), 0.0)
    a = Membership(store, CONFIG, me, slow, clock=clock)
    b, b_changes = member(store, clock, "b")
    starting = asyncio.create_task(a.start({}))
    await loading.wait()
    await renewed_at_every_heartbeat(clock, store.leases, "a")
    await b.start({})
    assert b_changes.calls == []  # nothing of a's was free to claim
    assert await owners(store) == {"a": set(range(8))}
    loaded.set()
    await starting
    assert a.epochs == dict.fromkeys(range(8), 1)


async def test_slow_reads_of_the_store_do_not_let_the_leases_lapse(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a busy node each read of the nodes and leases waits for the event loop:
    # the heartbeat reading them still renews on time.
    clock = FakeClock()
    a, _ = member(store, clock, "a")
    await a.start({})
    reading, read = asyncio.Event(), asyncio.Event()
    leases = store.leases

    async def slow() -> list[Lease]:
        reading.set()
        await read.wait()
        return await leases()

    monkeypatch.setattr(store, "leases", slow)
    await clock.advance(CONFIG.heartbeat)
    stepping = asyncio.create_task(a.step())
    await reading.wait()
    await renewed_at_every_heartbeat(clock, leases, "a")  # the test's own reads are not slow
    read.set()
    await stepping
    assert a.epochs == dict.fromkeys(range(8), 1)


async def test_a_failed_renewal_does_not_cut_a_handover_short(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    loading, loaded, done = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def slow(gained: set[int], lost: set[int]) -> None:
        loading.set()
        await loaded.wait()
        done.set()

    me = NodeRecord("a", "host-a", 1, "", "sum", clock.time(), 0.0)
    a = Membership(store, CONFIG, me, slow, clock=clock)
    starting = asyncio.create_task(a.start({}))
    await loading.wait()

    async def refuse(node: NodeRecord, until: float) -> dict[int, int]:
        raise StoreError("database is locked")

    monkeypatch.setattr(store, "keep_leases", refuse)
    await clock.advance(CONFIG.heartbeat)
    await wait_for(lambda: a.last_error is not None)
    assert a.last_error == "database is locked"
    loaded.set()
    await starting
    # The services of the shards gained were all started: nothing held unchecked.
    assert done.is_set() and a.epochs == dict.fromkeys(range(8), 1)


async def renewed_at_every_heartbeat(
    clock: FakeClock, read: Callable[[], Awaitable[list[Lease]]], owner: str
) -> None:
    """Two leases' worth of heartbeats, ``owner``'s leases renewed at each."""
    renewed = clock.time() + CONFIG.lease
    for _ in range(int(2 * CONFIG.lease / CONFIG.heartbeat)):
        await clock.advance(CONFIG.heartbeat)
        renewed += CONFIG.heartbeat
        await wait_for_leases(read, owner, renewed)


async def wait_for_leases(
    read: Callable[[], Awaitable[list[Lease]]], owner: str, until: float
) -> None:
    """Until every lease of ``owner`` (as ``read`` finds them) runs to ``until`` at
    least (a renewal is written)."""
    for _ in range(500):
        leases = [lease for lease in await read() if lease.owner == owner]
        if leases and all(lease.until >= until for lease in leases):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{owner}'s leases were not renewed to {until}")
