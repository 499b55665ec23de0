"""The other nodes of a cluster as this node sees them: their services' states and
open incidents, who holds which shard, and every node's heartbeat row.

A node keeps its own services in memory; the others' it reads from the store, where
their owners write them. :class:`Peers` keeps one copy of what the store says
(:class:`Sighting`) and looks again when a query finds it older than ``ttl`` (one
look at a time however many ask; a store that fails keeps the last copy, and the
failure is logged). A look reads the leases and nodes (a few hundred rows); every
state and incident only when the store's change mark moved (some node committed a
transition: NOTIFY on PostgreSQL, a counter on SQLite) or the states are older than
``max_age`` (their last-check times and counts), so an idle or steady cluster is
not read whole every second. Services whose state or incident changed since the last
read are told to ``changed``, so the live stream shows them too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from pymon.clock import Clock
from pymon.engine.ports import NodeView
from pymon.errors import StoreError
from pymon.model import Incident, ServiceState
from pymon.store.base import Lease, NodeRecord, Store

__all__ = ["Peers", "Sighting"]

log = logging.getLogger("pymon.cluster")


@dataclass(frozen=True, slots=True)
class Sighting:
    """What the store said at ``at``: every persisted state and open incident by
    service, every shard's lease and every node's row."""

    at: float = float("-inf")
    states: Mapping[str, ServiceState] = field(default_factory=dict)
    incidents: Mapping[str, Incident] = field(default_factory=dict)
    leases: tuple[Lease, ...] = ()
    nodes: tuple[NodeRecord, ...] = ()

    def holders(self, now: float) -> dict[int, str]:
        """The node holding each shard whose lease runs at ``now``."""
        return {
            lease.shard: lease.owner
            for lease in self.leases
            if lease.owner is not None and lease.until >= now
        }


class Peers:
    """The cluster's view from this node, read from the store at most every ``ttl``.

    ``node`` is this node's name; ``shard_of`` answers the current shard map (it
    changes with a reload); ``lease`` is how long a heartbeat keeps a node alive.
    """

    def __init__(
        self,
        store: Store,
        *,
        node: str,
        shard_of: Callable[[], Mapping[str, int]],
        lease: float,
        clock: Clock,
        ttl: float = 1.0,
        max_age: float = 10.0,
        changed: Callable[[Iterable[str]], None] = lambda names: None,
    ) -> None:
        self.node = node
        self._store = store
        self._shard_of = shard_of
        self._lease = lease
        self._clock = clock
        self._ttl = ttl
        self._changed = changed
        self._max_age = max_age
        self._seen = Sighting()
        # When the states were last read whole, and the change mark then.
        self._states_at = float("-inf")
        self._mark: int | None = None
        self._lock = asyncio.Lock()

    async def sighting(self) -> Sighting:
        """The store's view, read again when older than ``ttl``."""
        if self._fresh():
            return self._seen
        async with self._lock:
            # Another query may have read it while this one waited.
            if not self._fresh():
                await self._read()
        return self._seen

    @property
    def max_age(self) -> float:
        """How old the copy of the states may be (read whole at least this often)."""
        return self._max_age

    def owner(self, name: str, seen: Sighting) -> str | None:
        """The node running service ``name`` as ``seen`` says, None when nobody holds
        its shard."""
        shard = self._shard_of().get(name)
        return None if shard is None else seen.holders(self._clock.time()).get(shard)

    async def nodes(self) -> list[NodeView]:
        """Every node that ever beat on the store, by name, as of the last read."""
        seen = await self.sighting()
        now = self._clock.time()
        held: dict[str, int] = {}
        for owner in seen.holders(now).values():
            held[owner] = held.get(owner, 0) + 1
        return [
            NodeView(
                name=n.name,
                host=n.host,
                pid=n.pid,
                location=n.location,
                alive=n.stopped_at is None and now - n.heartbeat_at <= self._lease,
                shards=held.get(n.name, 0),
                heartbeat_age=max(now - n.heartbeat_at, 0.0),
                config_checksum=n.config_checksum,
                checks_per_s=n.checks_per_s,
            )
            for n in sorted(seen.nodes, key=lambda n: n.name)
        ]

    def _fresh(self) -> bool:
        return self._clock.time() - self._seen.at < self._ttl

    async def _read(self) -> None:
        now = self._clock.time()
        before = self._seen
        try:
            mark = await self._store.change_mark()
            whole = mark != self._mark or now - self._states_at >= self._max_age
            seen = Sighting(
                now,
                await self._store.load_states() if whole else before.states,
                await self._store.open_incidents() if whole else before.incidents,
                tuple(await self._store.leases()),
                tuple(await self._store.nodes()),
            )
        except StoreError as exc:
            # The last copy stays (marked read now, so a failing store is asked once
            # per ttl, not by every query).
            self._seen = Sighting(now, before.states, before.incidents, before.leases, before.nodes)
            log.error("cluster: reading the other nodes' services failed: %s", exc)
            return
        if whole:
            self._mark, self._states_at = mark, now
        self._seen = seen
        if before.at != float("-inf"):
            self._changed(_differences(before, seen, self._shard_of()))


def _differences(before: Sighting, after: Sighting, shard_of: Mapping[str, int]) -> list[str]:
    """Services whose state, open incident or node differs between two reads."""
    moved = {
        shard
        for shard in {lease.shard for lease in (*before.leases, *after.leases)}
        if before.holders(before.at).get(shard) != after.holders(after.at).get(shard)
    }
    names = {*before.states, *after.states, *before.incidents, *after.incidents}
    return sorted(
        {n for n, shard in shard_of.items() if shard in moved}
        | {
            n
            for n in names
            if before.states.get(n) != after.states.get(n)
            or before.incidents.get(n) != after.incidents.get(n)
        }
    )
