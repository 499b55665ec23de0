"""Nodes, shards, leases and epochs: which services this node runs (docs/cluster.md).

Every service belongs to one of ``cluster.shards`` shards; a node runs the services
of the shards it holds a lease on. One node alone takes every shard, so a single
process is the same code, not a special case. Each heartbeat a node writes its row
in the nodes table, renews its leases, works out its fair share among the live
nodes (:func:`plan`, pure) and claims free shards or gives its extra ones up. A
claim raises the shard's epoch; the node's writes carry the epochs it holds
(:class:`~pymon.store.base.Fence`), so a node that was paused past its lease
cannot overwrite the new owner's work.

A service is placed by the root of its ``depends_on`` tree, so a parent and its
children live on one node and the dependency rules see the parent's state at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from pymon.clock import Clock, sleep_or_wake
from pymon.config.schema import ClusterConfig, ServiceConfig
from pymon.engine.ports import ClusterFigures
from pymon.errors import StoreError
from pymon.locations import location_names, split
from pymon.programs import process_alive
from pymon.store.base import Fence, Lease, NodeRecord, Store

__all__ = [
    "Membership",
    "Plan",
    "Pools",
    "cluster_checksum",
    "default_node_name",
    "fair_share",
    "gone_here",
    "live_nodes",
    "new_node",
    "plan",
    "shard_map",
    "shard_of",
]

log = logging.getLogger("pymon.cluster")


def default_node_name() -> str:
    """The host name and the process id: unique on a machine, readable in a list."""
    return f"{socket.gethostname()}-{os.getpid()}"


def shard_of(key: str, shards: int) -> int:
    """The shard of ``key``: CRC-32 of its UTF-8 bytes modulo ``shards`` (the same on
    every node and every run, unlike Python's salted ``hash``)."""
    return zlib.crc32(key.encode()) % shards


@dataclass(frozen=True, slots=True)
class Pools:
    """The shards in pools: the first ``shards`` (pool ``""``) for the services every
    node may run, then ``shards`` more for each location some service lists, in
    sorted order, run only by nodes of that location (docs/cluster.md, "Pools").

    Every node derives the same pools from the same config (their checksums agree
    before any holds a shard), so a shard number means the same pool everywhere.
    """

    shards: int
    locations: tuple[str, ...] = ()

    @classmethod
    def of(cls, services: Sequence[ServiceConfig], shards: int) -> Pools:
        """The pools ``services`` need."""
        return cls(shards, tuple(location_names(services)))

    @property
    def total(self) -> int:
        """How many shards there are in all."""
        return self.shards * (1 + len(self.locations))

    def base(self, location: str) -> int:
        """The first shard of ``location``'s pool (0 for the common pool ``""``)."""
        return 0 if not location else self.shards * (1 + self.locations.index(location))

    def pool(self, shard: int) -> str | None:
        """The location whose pool holds ``shard`` (``""``: the common pool; None:
        none, a shard left from a config with more locations)."""
        index = shard // self.shards
        if index == 0:
            return ""
        return self.locations[index - 1] if index <= len(self.locations) else None

    def serves(self, shard: int, location: str) -> bool:
        """Whether a node at ``location`` may hold ``shard``."""
        pool = self.pool(shard)
        return pool == "" or (pool is not None and pool == location)


def shard_map(
    services: Sequence[ServiceConfig], shards: int, pools: Pools | None = None
) -> dict[str, int]:
    """Every service's shard: that of the first (by name) root of its ``depends_on``
    tree, so a dependency tree stays on one node. A parent that is not configured
    counts as no parent. A location check (``web@eu-west``) is in its location's pool
    (``pools``: :meth:`Pools.of` the services, when the caller has not made them),
    spread by its own name."""
    pools = pools or Pools.of(services, shards)
    if not pools.locations:
        return _rooted(services, shards)
    located = {s.name: where for s in services if (where := split(s.name)) is not None}
    return {
        **_rooted([s for s in services if s.name not in located], shards),
        **{
            name: pools.base(location) + shard_of(name, shards)
            for name, (_, location) in located.items()
        },
    }


def _rooted(services: Sequence[ServiceConfig], shards: int) -> dict[str, int]:
    """The shard of each service by the root of its ``depends_on`` tree."""
    parents = {s.name: s.depends_on for s in services}
    roots: dict[str, str] = {}

    def root(name: str, seen: frozenset[str]) -> str:
        if name in roots:
            return roots[name]
        up = [p for p in parents.get(name, []) if p in parents and p not in seen]
        found = min((root(p, seen | {name}) for p in up), default=name)
        roots[name] = found
        return found

    # Most services have no parent: their own name is their root.
    return {
        name: shard_of(root(name, frozenset()) if deps else name, shards)
        for name, deps in parents.items()
    }


def live_nodes(nodes: Sequence[NodeRecord], now: float, lease: float) -> list[str]:
    """Names of the nodes that beat within ``lease`` and did not stop, sorted."""
    return sorted(n.name for n in nodes if n.stopped_at is None and now - n.heartbeat_at <= lease)


def fair_share(me: str, live: Sequence[str], shards: int) -> int:
    """How many shards ``me`` should hold among ``live`` (sorted names): an equal part,
    the first ``shards % len(live)`` names one more. Every node works out the same."""
    names = sorted(set(live) | {me})
    base, extra = divmod(shards, len(names))
    return base + (1 if names.index(me) < extra else 0)


def gone_here(
    nodes: Sequence[NodeRecord],
    me: NodeRecord,
    alive: Callable[[int, float], bool] = process_alive,
) -> list[NodeRecord]:
    """Nodes of this machine (same host name) that did not stop cleanly and whose
    process is gone: a pymon killed and started again is a new node (its name holds
    its pid), and waiting out the old one's leases would leave its services
    unchecked for that long."""
    return [
        n
        for n in nodes
        if n.host == me.host
        and n.name != me.name
        and n.stopped_at is None
        and not alive(n.pid, n.started_at)
    ]


def cluster_checksum(nodes: Sequence[NodeRecord]) -> str:
    """The config the cluster runs: the checksum most of ``nodes`` (the live ones) run;
    on a tie, that of the node running longest (a node reloaded or started with a
    new file does not take the cluster over by arriving)."""
    counts: dict[str, int] = {}
    for node in nodes:
        counts[node.config_checksum] = counts.get(node.config_checksum, 0) + 1
    if not counts:
        return ""
    most = max(counts.values())
    tied = [n for n in nodes if counts[n.config_checksum] == most]
    return min(tied, key=lambda n: (n.started_at, n.name)).config_checksum


@dataclass(frozen=True, slots=True)
class Plan:
    """What a node does this heartbeat: shards to claim, shards to give up."""

    claim: tuple[int, ...] = ()
    release: tuple[int, ...] = ()


def plan(me: str, live: Sequence[str], leases: Sequence[Lease], now: float) -> Plan:
    """Claim free shards (nobody's, lapsed, or held by a node that is not live) up to
    this node's fair share; give up those beyond it, only while some live node holds
    fewer than its own share (it will claim them). Pure; the same inputs give every
    node the same targets."""
    shards = len(leases)
    if shards == 0:
        return Plan()
    target = fair_share(me, live, shards)
    alive = set(live) | {me}
    mine = sorted(lease.shard for lease in leases if lease.owner == me)
    if len(mine) > target:
        held: dict[str, int] = {}
        for lease in leases:
            if lease.owner in alive and lease.until >= now:
                held[lease.owner or ""] = held.get(lease.owner or "", 0) + 1
        short = any(held.get(n, 0) < fair_share(n, live, shards) for n in alive if n != me)
        if short:
            # The highest shards go: stable, so a joiner gets the same ones from each.
            return Plan(release=tuple(mine[target:]))
        return Plan()
    free = [
        lease.shard
        for lease in leases
        if lease.owner != me
        and (lease.owner is None or lease.until < now or lease.owner not in alive)
    ]
    return Plan(claim=tuple(free[: target - len(mine)]))


#: Told which services to start and stop (their shards were gained or lost).
Handover = Callable[[set[int], set[int]], Awaitable[None]]


class Membership:
    """This node's place in the cluster: its heartbeat, its leases and their epochs.

    ``changed(gained, lost)`` is awaited with the shards this node gained and lost
    at each heartbeat that changed them; shards it gives away are handed over only
    after ``changed`` returned (the node stopped their services and flushed their
    writes), so the next owner reads everything.
    """

    def __init__(
        self,
        store: Store,
        config: ClusterConfig,
        node: NodeRecord,
        changed: Handover,
        *,
        clock: Clock,
        rate: Callable[[], float] = lambda: 0.0,
        one_machine: bool = False,
        alive: Callable[[int, float], bool] = process_alive,
    ) -> None:
        self._store = store
        self._alive = alive
        # A SQLite file: every node must be on this machine (network file systems
        # do not lock SQLite files reliably).
        self._one_machine = one_machine
        self._config = config
        self.node = node
        self._changed = changed
        self._clock = clock
        self._rate = rate
        #: The epoch of every shard held, by shard (what this node's writes carry).
        self.epochs: dict[int, int] = {}
        self.shard_of: Mapping[str, int] = {}
        #: The pools the shards fall in (set with the shard map, at start and reload).
        self.pools = Pools(config.shards)
        # Shards created in the store so far (a reload may add a location's pool).
        self._created = 0
        self._wake = asyncio.Event()
        # Shards a write found taken, to hand over at the next heartbeat (soon).
        self._taken: set[int] = set()
        self.last_error: str | None = None
        #: Why this node holds no shards though it could (its config differs), or None.
        self.problem: str | None = None
        # Stopping: beat and renew, but neither claim nor give up shards.
        self._holding = False
        self._closing = False

    @property
    def name(self) -> str:
        """This node's name."""
        return self.node.name

    def figures(self) -> ClusterFigures:
        """This node for the health figures."""
        return ClusterFigures(self.node.name, len(self.epochs), self.problem, self.last_error)

    def fence(self) -> Fence:
        """What this node's writes must still hold to land."""
        return Fence(self.node.name, dict(self.epochs), self.shard_of)

    def owns(self, name: str) -> bool:
        """Whether this node runs service ``name``: it holds the shard, and the shard
        is in a pool of this node's (after a reload that moved the pools, a shard held
        in the wrong one is given up at the next beat, and runs nothing meanwhile)."""
        shard = self.shard_of.get(name)
        return shard in self.epochs and self.pools.serves(shard, self.node.location)

    def services(self, names: Sequence[str]) -> set[str]:
        """Those of ``names`` this node runs (:meth:`owns`)."""
        return {n for n in names if self.owns(n)}

    def map(self, shard_of: Mapping[str, int], pools: Pools) -> None:
        """Use this shard map and these pools from now on (a reload)."""
        self.shard_of, self.pools = shard_of, pools
        self._wake.set()

    async def start(self, shard_of: Mapping[str, int], pools: Pools | None = None) -> None:
        """Create the shards, beat once and take this node's first share."""
        self.shard_of = shard_of
        self.pools = pools or Pools(self._config.shards)
        await self._create_shards()
        await self._after_earlier_life()
        if self._one_machine:
            nodes = await self._store.nodes()
            live = set(live_nodes(nodes, self._clock.time(), self._config.lease))
            elsewhere = sorted(
                f"{n.name} on {n.host}"
                for n in nodes
                if n.name in live and n.host != self.node.host
            )
            if elsewhere:
                raise StoreError(
                    f"nodes on other machines use this SQLite file ({', '.join(elsewhere)}):"
                    " a cluster of several machines needs PostgreSQL (docs/cluster.md)"
                )
        await self.step()

    async def _after_earlier_life(self) -> None:
        """Refuse a name another running node has; give back the shards an earlier
        process of this name still holds (it is gone: this one claims them anew, with
        new epochs, and runs their services)."""
        now = self._clock.time()
        me = self.node
        for node in await self._store.nodes():
            if node.name != me.name or (node.pid == me.pid and node.host == me.host):
                continue
            running = node.stopped_at is None and now - node.heartbeat_at <= self._config.lease
            if running and (node.host != me.host or self._alive(node.pid, node.started_at)):
                raise StoreError(
                    f"node {me.name} is already running (pid {node.pid} on {node.host}):"
                    " give each node its own --node name"
                )
        held = [lease.shard for lease in await self._store.leases() if lease.owner == me.name]
        if held:
            log.info("cluster: %d shards of an earlier %s given back", len(held), me.name)
            await self._store.release_shards(me.name, held)

    def close(self) -> None:
        """End :meth:`run` after the step in progress, if any. A task cancelled in the
        middle of a transaction can leave its connection behind, holding SQLite's
        write lock for as long as the process lives."""
        self._closing = True
        self._wake.set()

    def hold(self) -> None:
        """From now on only renew the leases held (the node is stopping and flushing)."""
        self._holding = True
        self._wake.set()

    def lost(self, shards: frozenset[int]) -> None:
        """A write found ``shards`` taken by another node: stop their services now."""
        if shards & self.epochs.keys():
            for shard in shards:
                self.epochs.pop(shard, None)
            self._taken |= shards
            self._wake.set()

    async def run(self) -> None:
        """Beat every ``heartbeat`` until :meth:`close`; store trouble is logged and
        retried (leases run out meanwhile and fencing keeps the writes honest)."""
        while not self._closing:
            await sleep_or_wake(self._clock, self._wake, self._config.heartbeat)
            self._wake.clear()
            if self._closing:
                return
            try:
                await self.step()
            except Exception as exc:
                self.last_error = str(exc)
                log.error("cluster: heartbeat failed, will retry: %s", exc)

    async def step(self) -> None:
        """One heartbeat: beat and renew, then plan, hand over and claim, beating and
        renewing meanwhile at every heartbeat.

        The rest reads the store and may stop or start thousands of services: seconds
        on a busy node, whose event loop answers each read late. A heartbeat that
        renewed only once per step let the leases run out under it, and another
        node took them (docs/performance.md, "Overload on one SQLite file").
        """
        now = self._clock.time()
        held = await self._keep(now)
        await self._renewing(self._rebalance(now, held))

    async def _rebalance(self, now: float, held: dict[int, int]) -> None:
        """The heartbeat after its renewal (``held``): hand over what was lost, give
        up shards beyond the fair share, claim up to it."""
        until = now + self._config.lease
        lost = (set(self.epochs) - set(held)) | self._taken
        self._taken = set()
        if lost:
            # Taken by another node (this one was paused or cut off past its lease):
            # its writes for them are refused already; stop their services.
            self.epochs = {s: e for s, e in held.items() if s not in lost}
            await self._changed(set(), lost)
        if self._holding:
            return
        await self._create_shards()
        nodes, leases = await self._free_gone(now)
        live = live_nodes(nodes, now, self._config.lease)
        decided = self._decide(nodes, live, leases, now)
        given = set(decided.release)
        if given:
            # Services stopped and their writes flushed while the epochs still hold;
            # then the shards go, and the next owner reads all of it.
            await self._changed(set(), given)
            await self._store.release_shards(self.node.name, sorted(given))
        held = {s: e for s, e in held.items() if s not in lost and s not in given}
        claimed = await self._store.claim_shards(self.node.name, decided.claim, now, until)
        gained = set(claimed) - set(self.epochs)
        self.epochs = {**held, **claimed}
        self.last_error = None
        if gained:
            await self._changed(gained, set())
        if lost:
            log.warning("cluster: lost %d shards to other nodes", len(lost))
        if gained or given:
            log.info(
                "cluster: %s holds %d shards (+%d -%d) among %d live nodes",
                self.node.name,
                len(self.epochs),
                len(gained),
                len(given),
                len(live),
            )

    async def _renewing(self, work: Awaitable[None]) -> None:
        """Await ``work``, beating and renewing the leases held at every heartbeat
        meanwhile.

        A heartbeat reads the store and may hand services over (stop or start them,
        flush their writes): seconds on a busy node, tens of thousands of services to
        load, a writer behind. Without renewals meanwhile, the leases ran out under
        it, another node took this one's shards, which it then spent as long loading,
        and so on: two overloaded workers handed every shard back and forth every few
        seconds (docs/performance.md, "Two workers on two cores").
        """
        task = asyncio.ensure_future(work)
        try:
            while True:
                sleeper = asyncio.ensure_future(self._clock.sleep(self._config.heartbeat))
                try:
                    await asyncio.wait((task, sleeper), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    sleeper.cancel()
                if task.done():
                    return task.result()
                try:
                    await self._keep(self._clock.time())
                except Exception as exc:
                    # The work must end whole (a gain cut short would leave shards held
                    # with nobody checking their services); the next beat retries.
                    self.last_error = str(exc)
                    log.error("cluster: heartbeat failed, will retry: %s", exc)
        finally:
            task.cancel()

    async def _keep(self, now: float) -> dict[int, int]:
        """Beat and renew the leases held; the shards held, with their epochs."""
        self.node = replace(self.node, heartbeat_at=now, checks_per_s=self._rate())
        return await self._store.keep_leases(self.node, now + self._config.lease)

    async def _free_gone(self, now: float) -> tuple[list[NodeRecord], list[Lease]]:
        """The nodes and leases, after freeing the shards of this machine's nodes whose
        process is gone (:func:`gone_here`)."""
        nodes, leases = await self._store.nodes(), await self._store.leases()
        gone = gone_here(nodes, self.node, self._alive)
        for node in gone:
            theirs = [lease.shard for lease in leases if lease.owner == node.name]
            log.warning(
                "cluster: node %s (pid %d) is gone; its %d shards are free now",
                node.name,
                node.pid,
                len(theirs),
            )
            await self._store.release_shards(node.name, theirs)
            await self._store.node_stopped(node.name, now)
        if not gone:
            return nodes, leases
        return await self._store.nodes(), await self._store.leases()

    def _decide(
        self, nodes: Sequence[NodeRecord], live: Sequence[str], leases: Sequence[Lease], now: float
    ) -> Plan:
        """:func:`plan` among the live nodes that run the cluster's config; a node whose
        config differs holds no shards (it would check with other settings)."""
        me = self.node
        # This node as it is now, not as its last beat wrote it: a reload between that
        # read and this decision would otherwise set it against its own old config.
        running = [me if n.name == me.name else n for n in nodes if n.name in live]
        agreed = cluster_checksum(running)
        mine = me.config_checksum
        if mine != agreed:
            if self.problem is None:
                log.error(
                    "cluster: this node's config (checksum %s) differs from the cluster's "
                    "(%s): it holds no shards until they agree (reload it, or the others)",
                    mine[:12],
                    agreed[:12],
                )
            self.problem = f"config checksum {mine[:12]} differs from the cluster's {agreed[:12]}"
            return Plan(release=tuple(sorted(self.epochs)))
        self.problem = None
        agreeing = [n for n in running if n.config_checksum == agreed]
        return self._plan_pools(agreeing, leases, now)

    def _plan_pools(
        self, agreeing: Sequence[NodeRecord], leases: Sequence[Lease], now: float
    ) -> Plan:
        """:func:`plan` in each pool this node serves, among the nodes that serve it;
        the shards it holds in any other pool (or in none: left from a config with
        more locations) are given up."""
        me = self.node
        by_pool: dict[str | None, list[Lease]] = {}
        for lease in leases:
            by_pool.setdefault(self.pools.pool(lease.shard), []).append(lease)
        claim: list[int] = []
        release: list[int] = []
        for pool, theirs in by_pool.items():
            if pool is None or (pool and pool != me.location):
                release += [lease.shard for lease in theirs if lease.owner == me.name]
                continue
            members = [n.name for n in agreeing if not pool or n.location == pool]
            step = plan(me.name, members, theirs, now)
            claim += step.claim
            release += step.release
        return Plan(tuple(claim), tuple(sorted(release)))

    async def _create_shards(self) -> None:
        """Create the pools' shards in the store where missing."""
        if self._created < self.pools.total:
            await self._store.add_shards(self.pools.total)
            self._created = self.pools.total

    def config_changed(self, checksum: str) -> None:
        """This node runs a config with ``checksum`` now (a reload); told at the next beat."""
        self.node = replace(self.node, config_checksum=checksum)
        self._wake.set()

    async def leave(self) -> None:
        """Give every shard up and say this node stopped (a clean stop: the others
        take over at their next heartbeat, not after the lease). Nothing, for a node
        that never beat (its store never opened)."""
        if self.node.heartbeat_at == 0.0:
            return
        shards = sorted(self.epochs)
        self.epochs = {}
        await self._store.release_shards(self.node.name, shards)
        await self._store.node_stopped(self.node.name, self._clock.time())


def new_node(name: str, checksum: str, web: str, location: str = "") -> NodeRecord:
    """This process as a node that has not beaten yet."""
    return NodeRecord(
        name=name,
        host=socket.gethostname(),
        pid=os.getpid(),
        location=location,
        config_checksum=checksum,
        started_at=time.time(),
        heartbeat_at=0.0,
        web=web,
    )
