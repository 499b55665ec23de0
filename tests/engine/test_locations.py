"""Locations end to end in one process: three nodes of three locations on one SQLite
file, each resolving the target its own way (a cut location resolves it to an
address nothing listens on), real tcp checks, the combined status through the port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from pymon.config.load import load_config_text
from pymon.config.schema import Config
from pymon.daemon import Daemon
from pymon.engine.cluster import Pools, shard_map
from pymon.engine.ports import ServiceView
from pymon.locations import expand
from pymon.model import Status
from tests.support.servers import TcpListener
from tests.support.waiting import wait_for, wait_until

LOCATIONS = ("x", "y", "z")


class Route:
    """A location's way to the target: 127.0.0.1 while up, 127.0.0.2 (where nothing
    listens on the target's port) while cut."""

    def __init__(self) -> None:
        self.cut = False

    async def resolve(self, host: str) -> list[str]:
        return ["127.0.0.2" if self.cut else "127.0.0.1"]


def config(db: Path, port: int, quorum: int | str = 2) -> Config:
    loaded = load_config_text(f"""
storage: {{url: "sqlite:///{db}", flush_interval: 50ms}}
web: {{enabled: false}}
cluster: {{heartbeat: 200ms, lease: 1s, shards: 4}}
defaults: {{interval: 200ms, timeout: 1s, flap_guard: {{failed: 1, ok: 1}}}}
services:
  - name: web
    type: tcp
    host: target
    port: {port}
    locations: [x, y, z]
    quorum: {quorum}
""")
    # The loader expands location checks once the config side lands; until then here.
    if len(loaded.services) == 1:
        loaded = loaded.model_copy(update={"services": expand(loaded.services)})
    return loaded


@pytest.fixture
async def nodes(
    tmp_path: Path, listener: TcpListener
) -> AsyncIterator[tuple[dict[str, Daemon], dict[str, Route]]]:
    routes = {loc: Route() for loc in LOCATIONS}
    daemons = {
        loc: Daemon(
            config(tmp_path / "p.db", listener.port),
            node=f"node-{loc}",
            location=loc,
            resolver=routes[loc],
        )
        for loc in LOCATIONS
    }
    for d in daemons.values():
        await d.start()
    try:
        yield daemons, routes
    finally:
        for d in daemons.values():
            await d.stop()


async def view(daemons: dict[str, Daemon], name: str = "web") -> ServiceView:
    # Whichever node runs the service answers from memory; the others from the store.
    for d in daemons.values():
        if name in d.runtime.states:
            found = await d.runtime.service(name)
            assert found is not None
            return found
    raise AssertionError(f"no node runs {name}")


def test_pools_put_each_location_check_in_its_locations_range() -> None:
    services = expand(config(Path("/nowhere.db"), 1).services[:1])
    pools = Pools.of(services, 4)
    assert pools.locations == LOCATIONS
    assert pools.total == 16
    placed = shard_map(services, 4)
    assert 0 <= placed["web"] < 4
    for i, loc in enumerate(LOCATIONS, start=1):
        assert 4 * i <= placed[f"web@{loc}"] < 4 * (i + 1)
        assert pools.pool(placed[f"web@{loc}"]) == loc
    assert pools.pool(16) is None  # left from a config with more locations
    assert pools.serves(placed["web@x"], "x") and not pools.serves(placed["web@x"], "y")
    assert all(pools.serves(s, loc) for s in range(4) for loc in ("", "x", "q"))


async def test_each_location_check_runs_on_a_node_of_its_location(
    nodes: tuple[dict[str, Daemon], dict[str, Route]],
) -> None:
    daemons, _ = nodes

    def placed() -> bool:
        return all(f"web@{loc}" in daemons[loc].runtime.states for loc in LOCATIONS)

    await wait_for(placed)
    for loc, d in daemons.items():
        others = {f"web@{o}" for o in LOCATIONS if o != loc}
        assert not others & d.runtime.states.keys()
    listed = await daemons["x"].runtime.services()
    assert [v.name for v in listed] == ["web"]


async def test_one_cut_location_is_partial_two_are_down_and_restoring_recovers(
    nodes: tuple[dict[str, Daemon], dict[str, Route]],
) -> None:
    daemons, routes = nodes

    async def seen() -> ServiceView:
        return await view(daemons)

    last: list[ServiceView] = []

    def reaches(status: Status, partial: tuple[str, ...]) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            v = await seen()
            last[:] = [v]
            return (
                v.state.status is status
                and v.partial_locations == partial
                and len(v.combined.present if v.combined else ()) == 3
            )

        return check

    await wait_until(reaches(Status.OK, ()))
    v = last[0]
    assert set(v.locations) == set(LOCATIONS)
    assert {r.node for r in v.locations.values()} == {f"node-{loc}" for loc in LOCATIONS}

    routes["x"].cut = True
    await wait_until(reaches(Status.OK, ("x",)))
    v = last[0]
    assert v.partial
    assert v.locations["x"].status is Status.FAILED
    assert "partial: down from x" in v.state.message

    routes["y"].cut = True
    await wait_until(reaches(Status.FAILED, ()))
    assert last[0].state.message.startswith("down from x, y; ok from z")

    routes["x"].cut = routes["y"].cut = False
    await wait_until(reaches(Status.OK, ()))
