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
from pymon.model import Notice, Status
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
    return load_config_text(f"""
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

    async def everyone_sees_it_partial() -> bool:
        # A node that does not run the service answers from the store's copy: the
        # same locations, the same flag, the nodes that run each location check.
        for d in daemons.values():
            other = await d.runtime.service("web")
            if other is None or other.partial_locations != ("x",):
                return False
            if {r.node for r in other.locations.values()} != {f"node-{o}" for o in LOCATIONS}:
                return False
        return True

    await wait_until(everyone_sees_it_partial)

    assert await notices(daemons) == []  # a partial problem tells nobody

    routes["y"].cut = True
    await wait_until(reaches(Status.FAILED, ()))
    assert last[0].state.message.startswith("down from x, y; ok from z")

    routes["x"].cut = routes["y"].cut = False
    await wait_until(reaches(Status.OK, ()))
    sent = await notices(daemons)
    assert [(n.kind.value, n.status) for n in sent] == [
        ("problem", Status.FAILED),
        ("recovery", Status.OK),
    ]
    assert sent[0].message.startswith("down from x, y; ok from z")


async def notices(daemons: dict[str, Daemon]) -> list[Notice]:
    """Every notice of ``web`` in the store, oldest first, after every node's writes."""
    for d in daemons.values():
        await d.writer.flush()
    found = await next(iter(daemons.values())).store.notices()
    return sorted((n for n in found if n.service == "web"), key=lambda n: n.at)


@pytest.mark.parametrize("quorum", [2, 3])
async def test_a_gone_locations_results_age_out(
    tmp_path: Path, listener: TcpListener, quorum: int
) -> None:
    daemons = {
        loc: Daemon(
            config(tmp_path / "p.db", listener.port, quorum),
            node=f"node-{loc}",
            location=loc,
            resolver=Route(),
        )
        for loc in LOCATIONS
    }
    for d in daemons.values():
        await d.start()
    try:

        async def all_ok() -> bool:
            v = await view(daemons)
            return v.state.status is Status.OK and v.combined is not None and not v.combined.absent

        await wait_until(all_ok)
        await daemons.pop("z").stop()

        async def z_absent() -> bool:
            v = await view(daemons)
            return v.combined is not None and "z" in v.combined.absent

        await wait_until(z_absent)
        if quorum == 2:
            # Decided by the other two: still ok, and evaluated again since.
            v = await view(daemons)
            seq = v.state.seq

            async def evaluated_again() -> bool:
                return (await view(daemons)).state.seq >= seq + 3

            await wait_until(evaluated_again)
            v = await view(daemons)
            assert v.state.status is Status.OK
            assert v.state.message == "ok from x, y"
        else:

            async def unknown() -> bool:
                v = await view(daemons)
                return v.state.status is Status.UNKNOWN and v.state.confirmed

            await wait_until(unknown)
            message = (await view(daemons)).state.message
            assert message.startswith("2 of 3 locations reporting, quorum 3 (z: last result")
    finally:
        for d in daemons.values():
            await d.stop()


async def test_a_location_no_node_announced_is_absent_with_the_reason(
    tmp_path: Path, listener: TcpListener
) -> None:
    daemons = {
        loc: Daemon(
            config(tmp_path / "p.db", listener.port),
            node=f"node-{loc}",
            location=loc,
            resolver=Route(),
        )
        for loc in ("x", "y")
    }
    for d in daemons.values():
        await d.start()
    try:

        async def ok_without_z() -> bool:
            v = await view(daemons)
            return v.state.status is Status.OK and v.combined is not None

        await wait_until(ok_without_z)
        v = await view(daemons)
        assert v.combined is not None
        assert v.combined.absent == {"z": "no node has ever announced this location"}
        assert "z" not in v.locations
    finally:
        for d in daemons.values():
            await d.stop()
