"""The location board: what each location sees of the services with ``locations``
that this node runs, and the wake-up when one of them changes its mind.

A service with locations checks nothing itself (:mod:`pymon.locations`): its node
combines the latest state of its location checks, which nodes of each location run.
Those this node runs are in its memory; the others it reads from the store, every
``tick`` and whenever the store's change mark moved (some node committed a
transition), only for the services it runs, in one query per thousand names.
A location check whose confirmed status changed (here or on another node) runs its
service's decision at once, so a confirmation reaches the notice within about a
tick, not an interval.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container, Iterable, Mapping
from typing import Final

from pymon.clock import Clock
from pymon.config.schema import ServiceConfig
from pymon.engine.peers import Peers, Sighting
from pymon.errors import StoreError
from pymon.locations import Combined, LocationResult, at, combine, max_age, quorum_of
from pymon.model import ServiceState
from pymon.store.base import Store

__all__ = ["LocationBoard"]

log = logging.getLogger("pymon.cluster")

_CHUNK: Final = 1000


class _Everywhere:
    """Every location is announced: a node with no cluster around it runs them all."""

    def __contains__(self, location: object) -> bool:
        return True


class LocationBoard:
    """The location checks' latest states for the services with locations this node
    runs (``running`` answers them); :meth:`run` keeps the others' fresh.

    ``local`` answers a state this node holds (None: another node runs it);
    ``wake`` runs a service's decision now. Without ``peers`` (one engine alone,
    in tests) this node runs every location check and every location counts as
    announced.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock,
        node: str | None,
        local: Callable[[str], ServiceState | None],
        running: Callable[[], Iterable[ServiceConfig]],
        wake: Callable[[str], None],
        peers: Peers | None = None,
        tick: float = 1.0,
        delay: float = 0.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._node = node
        self._local = local
        self._running = running
        self._wake = wake
        self._peers = peers
        self._tick = tick
        # How late another node's result may reach this one: its writer's delay
        # (``delay``) and this board's look. Added to every location's age limit, so a
        # location is never absent for the time its result takes to travel.
        self.travel = tick + delay
        #: Whether the board has looked at the store once (before that, nothing it
        #: says of another node's locations is known yet).
        self.ready = peers is None
        #: Location checks another node runs, as the store had them at the last look.
        self._theirs: dict[str, ServiceState] = {}
        self._owners: dict[str, str | None] = {}
        self._announced: Container[str] = _Everywhere() if peers is None else frozenset()

    def results(
        self, service: ServiceConfig, seen: Sighting | None = None
    ) -> dict[str, LocationResult]:
        """Each listed location's latest known result: this node's own, else the last
        look at the store, else ``seen``'s (the peers' older copy, for a service
        another node runs)."""
        found: dict[str, LocationResult] = {}
        for location in service.locations:
            name = at(service.name, location)
            state = self._local(name)
            node = self._node
            if state is None:
                state = self._theirs.get(name)
                node = self._owners.get(name)
                if state is None and seen is not None and self._peers is not None:
                    state = seen.states.get(name)
                    node = self._peers.owner(name, seen)
            if state is not None:
                found[location] = _result(location, state, node)
        return found

    def combined(
        self,
        service: ServiceConfig,
        found: Mapping[str, LocationResult],
        now: float,
        slack: float = 0.0,
        seen: Sighting | None = None,
    ) -> Combined:
        """What ``service``'s locations (``found``: :meth:`results`) decide together at
        ``now``; ``slack`` widens the age limit for a reader whose copy is that old,
        ``seen`` (the peers' copy) says which locations were announced, for a node
        whose board does not look (it runs no service with locations)."""
        announced = self._announced if seen is None else _announced(seen)
        return combine(
            service.locations,
            found,
            quorum=quorum_of(len(service.locations), service.quorum),
            now=now,
            max_age=max_age(service) + self.travel + slack,
            announced=announced,
            notify_partial=service.notify_partial,
        )

    async def run(self) -> None:
        """Look at the store every ``tick`` until cancelled; a failed look is logged
        and the last copy kept (the services' results age out meanwhile)."""
        mark: int | None = None
        looked = float("-inf")
        while True:
            try:
                # A confirmation elsewhere is a transition, which moves the store's
                # change mark: looking when it moves (a fifth of a tick) rather than
                # once a tick brings the notice ~a second sooner (docs/performance.md).
                now = self._clock.time()
                moved = self._peers is not None and self._located()
                current = await self._store.change_mark() if moved else mark
                if current != mark or now - looked >= self._tick:
                    await self.look()
                    mark, looked = current, now
            except StoreError as exc:
                log.error("locations: reading the other nodes' location checks failed: %s", exc)
            await self._clock.sleep(self._tick / 5)

    def _located(self) -> bool:
        """Whether this node runs any service with locations."""
        return next(iter(self._running()), None) is not None

    async def look(self) -> None:
        """Read the location checks other nodes run, for the services this node runs;
        wake each service whose location changed its confirmed status."""
        if self._peers is None or not self._located():
            # Nothing to read: and the peers' copy is not refreshed for nothing (a
            # refresh may read every state in the store).
            self._theirs, self._owners = {}, {}
            self.ready = True
            return
        seen = await self._peers.sighting()
        self._announced = _announced(seen)
        wanted: dict[str, str] = {}
        for service in self._running():
            for location in service.locations:
                name = at(service.name, location)
                if self._local(name) is None:
                    wanted[name] = service.name
        if not wanted:
            self._theirs, self._owners = {}, {}
            self.ready = True
            return
        names = list(wanted)
        read: dict[str, ServiceState] = {}
        for i in range(0, len(names), _CHUNK):
            read.update(await self._store.load_states(names[i : i + _CHUNK]))
        before = self._theirs
        self._theirs = read
        self.ready = True
        self._owners = {name: self._peers.owner(name, seen) for name in names}
        woken = {
            wanted[name]
            for name, state in read.items()
            if (old := before.get(name)) is None or old.confirmed_status != state.confirmed_status
        }
        for name in sorted(woken):
            self._wake(name)


def _announced(seen: Sighting) -> frozenset[str]:
    """The locations some node of ``seen`` announced, gone or not."""
    return frozenset(n.location for n in seen.nodes if n.location)


def _result(location: str, state: ServiceState, node: str | None) -> LocationResult:
    return LocationResult(
        location,
        state.confirmed_status,
        state.message,
        state.last_check,
        state.last_duration,
        node,
    )
