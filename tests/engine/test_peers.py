"""The other nodes' services and the nodes themselves, read from a real SQLite store
through :class:`Peers` (at most once a ttl, one read at a time, the last copy kept
when the store fails), and the runtime answering for every service with them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path

import pytest

from pymon.config.load import load_config_text
from pymon.engine.cluster import shard_map
from pymon.engine.peers import Peers
from pymon.engine.runtime import Runtime
from pymon.model import Incident, ServiceState, Status
from pymon.store.base import NodeRecord
from pymon.store.sql import SqlStore
from pymon.store.writer import BatchWriter
from tests.store.test_cluster_store import event
from tests.support.clock import FakeClock

LEASE = 5.0
CONFIG = load_config_text(
    """
cluster: {shards: 4}
services:
  - {name: web, type: tcp, host: 127.0.0.1, port: 9}
  - {name: db, type: tcp, host: 127.0.0.1, port: 9}
  - {name: cache, type: tcp, host: 127.0.0.1, port: 9}
"""
)
SHARD_OF = shard_map(CONFIG.services, 4)


class CountingStore(SqlStore):
    """A real SQLite store that counts the reads of every state."""

    reads = 0

    async def load_states(self, names: Sequence[str] | None = None) -> dict[str, ServiceState]:
        self.reads += 1
        return await super().load_states(names)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CountingStore]:
    sql_store = CountingStore(f"sqlite:///{tmp_path}/pymon.db")
    await sql_store.open()
    try:
        yield sql_store
    finally:
        await sql_store.close()


def node(name: str, heartbeat_at: float, **extra: float) -> NodeRecord:
    return NodeRecord(
        name=name,
        host="host",
        pid=7,
        location="rack-1",
        config_checksum="sum",
        started_at=heartbeat_at,
        heartbeat_at=heartbeat_at,
        **extra,  # type: ignore[arg-type]
    )


async def hold(store: SqlStore, owner: str, names: Iterable[str], until: float) -> None:
    """``owner`` holds the shards of ``names`` until ``until``."""
    shards = sorted({SHARD_OF[n] for n in names})
    await store.claim_shards(owner, shards, 0.0, until)


MAX_AGE = 10.0


def peers(store: SqlStore, clock: FakeClock, changed: list[str] | None = None) -> Peers:
    return Peers(
        store,
        node="here",
        shard_of=lambda: SHARD_OF,
        lease=LEASE,
        clock=clock,
        max_age=MAX_AGE,
        changed=(changed if changed is not None else []).extend,
    )


def failed(name: str, seq: int = 1) -> ServiceState:
    return ServiceState(name, status=Status.FAILED, seq=seq, message="refused")


async def test_nodes_say_alive_shards_and_heartbeat_age(store: SqlStore) -> None:
    clock = FakeClock()
    now = clock.time()
    await store.add_shards(4)
    await store.keep_leases(node("there", now - 1, checks_per_s=12.5), 0.0)
    await store.keep_leases(node("quiet", now - 60), 0.0)
    await store.keep_leases(node("gone", now - 2, stopped_at=now - 1), 0.0)
    await hold(store, "there", ["web"], now + LEASE)
    # A lapsed lease is held by nobody, whoever it names.
    await store.claim_shards("quiet", [s for s in range(4) if s != SHARD_OF["web"]], 0, now - 1)

    views = {v.name: v for v in await peers(store, clock).nodes()}

    assert list(views) == ["gone", "quiet", "there"]
    assert [views[n].alive for n in views] == [False, False, True]
    assert views["there"].shards == 1
    assert views["quiet"].shards == 0
    assert views["there"].heartbeat_age == 1
    assert views["quiet"].heartbeat_age == 60
    assert views["there"].checks_per_s == 12.5
    assert (views["there"].location, views["there"].config_checksum) == ("rack-1", "sum")


async def test_a_sighting_is_read_once_per_ttl_and_one_read_at_a_time(
    store: CountingStore,
) -> None:
    clock = FakeClock()
    await store.write([failed("db")], [], [])
    seen = peers(store, clock)

    first = await asyncio.gather(*(seen.sighting() for _ in range(5)))
    assert store.reads == 1
    assert all(s is first[0] for s in first)
    assert first[0].states["db"].status is Status.FAILED

    # A transition (an event in the batch) moves the change mark: read at the next ttl.
    recovered = ServiceState("db", status=Status.OK, seq=2)
    await store.write([recovered], [], [event("db", 2)])
    await clock.advance(0.5)
    assert (await seen.sighting()).states["db"].status is Status.FAILED
    await clock.advance(0.5)
    assert (await seen.sighting()).states["db"] == recovered
    assert store.reads == 2

    # A state written without a transition (another check, the same status) does not
    # move it: the states are read again only once they are max_age old.
    await store.write([ServiceState("db", status=Status.OK, seq=3)], [], [])
    await clock.advance(1.0)
    assert (await seen.sighting()).states["db"].seq == 2
    assert store.reads == 2
    await clock.advance(MAX_AGE)
    assert (await seen.sighting()).states["db"].seq == 3
    assert store.reads == 3


async def test_changes_between_reads_are_told(store: SqlStore) -> None:
    clock = FakeClock()
    now = clock.time()
    await store.add_shards(4)
    await store.write([failed("db"), failed("web")], [], [])
    told: list[str] = []
    seen = peers(store, clock, told)
    await seen.sighting()
    assert told == []  # the first read is no change

    await store.write([failed("db", seq=2)], [], [])
    incident = Incident("i-1", "cache", now, Status.FAILED, Status.FAILED)
    await store.write([], [], [], [incident])
    await hold(store, "there", ["web"], now + LEASE)
    await clock.advance(1)
    await seen.sighting()
    moved = {n for n, shard in SHARD_OF.items() if shard == SHARD_OF["web"]}
    assert set(told) == {"db", "cache"} | moved


async def test_a_failing_store_keeps_the_last_copy(
    store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    await store.write([failed("db")], [], [])
    seen = peers(store, clock)
    before = await seen.sighting()
    await store.close()
    await clock.advance(5)

    with caplog.at_level(logging.ERROR, "pymon.cluster"):
        after = await seen.sighting()
        again = await seen.sighting()

    assert after.states == before.states
    assert again is after  # a failing store is asked once per ttl, not by every query
    assert "reading the other nodes' services failed" in caplog.text
    assert len(caplog.records) == 1


async def test_the_runtime_answers_for_every_service_with_its_node(store: SqlStore) -> None:
    clock = FakeClock()
    now = clock.time()
    await store.add_shards(4)
    await store.keep_leases(node("there", now), 0.0)
    others = [n for n in SHARD_OF if SHARD_OF[n] != SHARD_OF["web"]]
    await hold(store, "there", others, now + LEASE)
    down = others[0]
    incident = Incident("i-1", down, now, Status.FAILED, Status.FAILED)
    await store.write([failed(down)], [], [], [incident])
    writer = BatchWriter(store, clock=clock)
    runtime = Runtime(CONFIG, store=store, writer=writer, clock=clock, peers=peers(store, clock))
    runtime.owns = lambda name: name == "web"
    await runtime.take(["web"])

    views = {v.name: v for v in await runtime.services()}

    assert list(views) == ["web", "db", "cache"]  # config order
    assert views["web"].node == "here"
    assert {views[n].node for n in others} == {"there"}
    assert views[down].state.status is Status.FAILED
    assert views[down].incident == incident
    never = [n for n in others if n != down]
    assert all(views[n].state.status is Status.UNKNOWN for n in never)
    assert (await runtime.service(down)) == views[down]
    assert await runtime.service("nope") is None
    counts = await runtime.status_counts()
    assert (counts["failed"], counts["unknown"]) == (1, 2)
    assert [i.service for i in await runtime.open_incidents()] == [down]
    assert [n.name for n in await runtime.nodes()] == ["there"]


async def test_a_runtime_running_every_service_reads_nothing(store: CountingStore) -> None:
    clock = FakeClock()
    writer = BatchWriter(store, clock=clock)
    runtime = Runtime(CONFIG, store=store, writer=writer, clock=clock, peers=peers(store, clock))
    await runtime.take(list(SHARD_OF))
    reads = store.reads

    assert {v.node for v in await runtime.services()} == {"here"}
    await runtime.status_counts()
    await runtime.open_incidents()
    assert store.reads == reads
