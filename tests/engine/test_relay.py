"""Commands for another node's services through the relay, and windows kept in step:
two daemons (nodes a and b) in one process on one SQLite file, and the relay alone
against a store where nobody answers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pymon.clock import SystemClock
from pymon.config.load import load_config_text
from pymon.config.windows import MaintenanceWindow
from pymon.daemon import Daemon
from pymon.engine.relay import Relay
from pymon.errors import CommandRefused, UnknownService
from pymon.model import Incident
from pymon.store.base import CommandRecord
from pymon.store.sql import SqlStore
from tests.support.servers import refused_port
from tests.support.waiting import wait_for

DOWN = [f"down-{n}" for n in range(8)]
OFF = [f"off-{n}" for n in range(8)]


def config(tmp_path: Path) -> str:
    closed = refused_port()
    services = [f"  - {{name: {n}, type: tcp, host: 127.0.0.1, port: {closed}}}" for n in DOWN] + [
        f"  - {{name: {n}, type: tcp, host: 127.0.0.1, port: {closed}, enabled: false}}"
        for n in OFF
    ]
    return (
        f"""
storage: {{url: "sqlite:///{tmp_path}/p.db", flush_interval: 50ms}}
web: {{listen: "127.0.0.1:0"}}
defaults: {{interval: 100ms, timeout: 1s, flap_guard: {{failed: 1, ok: 1}}}}
cluster: {{heartbeat: 100ms, lease: 2s, shards: 8}}
reload: {{watch: false}}
services:
"""
        + "\n".join(services)
        + "\n"
    )


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[tuple[Daemon, Daemon]]:
    """Nodes a and b sharing the shards (four each)."""
    text = config(tmp_path)
    a = Daemon(load_config_text(text), node="a")
    b = Daemon(load_config_text(text), node="b")
    await a.start()
    try:
        await b.start()
        try:
            await wait_for(lambda: len(a.membership.epochs) == len(b.membership.epochs) == 4)
            yield a, b
        finally:
            await b.stop()
    finally:
        await a.stop()


def on(node: Daemon, names: list[str]) -> str:
    """One of ``names`` that ``node`` runs."""
    return next(n for n in names if node.runtime.owns(n))


async def test_an_ack_sent_to_b_is_applied_by_a_once(nodes: tuple[Daemon, Daemon]) -> None:
    a, b = nodes
    name = on(a, DOWN)
    await wait_for(lambda: name in a.runtime.incidents)
    assert name not in b.runtime.states

    acked = await b.runtime.acknowledge(name, "ann", "on it", None)
    assert acked.ack is not None and acked.ack.author == "ann"
    held = a.runtime.incidents[name]
    assert held.id == acked.id and held.ack is not None and held.ack.comment == "on it"

    # Again: like a second local ack, it acknowledges anew.
    again = await b.runtime.acknowledge(name, "bob")
    assert again.ack is not None and again.ack.author == "bob"
    unacked = await b.runtime.unacknowledge(name, "bob")
    assert unacked.ack is None and a.runtime.incidents[name].ack is None
    with pytest.raises(CommandRefused, match="is not acknowledged"):
        await b.runtime.unacknowledge(name, "bob")


async def test_refusals_come_back_as_the_owner_raised_them(nodes: tuple[Daemon, Daemon]) -> None:
    a, b = nodes
    off = on(a, OFF)
    with pytest.raises(CommandRefused, match="disabled"):
        await b.runtime.run_now(off)
    with pytest.raises(CommandRefused, match="no open incident"):
        await b.runtime.acknowledge(off, "ann")
    with pytest.raises(UnknownService, match="nope"):
        await b.runtime.acknowledge("nope", "ann")


async def test_run_now_sent_to_b_runs_the_check_on_a(nodes: tuple[Daemon, Daemon]) -> None:
    a, b = nodes
    name = on(a, DOWN)
    runs = a.runtime.scheduler.stats.runs
    await b.runtime.run_now(name)
    await wait_for(lambda: a.runtime.scheduler.stats.runs > runs)


async def test_windows_added_or_removed_on_one_node_reach_the_other(
    nodes: tuple[Daemon, Daemon],
) -> None:
    a, b = nodes
    name = on(a, DOWN)
    start = datetime.now(UTC) - timedelta(minutes=1)
    window = MaintenanceWindow.model_validate(
        {
            "services": [name],
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
            "comment": "swap",
        }
    )
    added = await b.runtime.add_maintenance(window)
    assert added.id is not None
    await wait_for(lambda: added.id in a.runtime.adhoc_windows)
    await wait_for(lambda: a.runtime.states[name].maintenance)
    assert await a.runtime.remove_maintenance(added.id)
    await wait_for(lambda: added.id not in b.runtime.adhoc_windows)
    await wait_for(lambda: not a.runtime.states[name].maintenance)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    opened = SqlStore(f"sqlite:///{tmp_path}/alone.db")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_command_nobody_takes_is_withdrawn_after_the_timeout(store: SqlStore) -> None:
    relay = Relay(store, "b", clock=SystemClock(), timeout=0.3, poll=0.05)
    with pytest.raises(CommandRefused, match=r"did not answer in time .* nothing was done"):
        await relay.acknowledge("web", "ann", "", None)
    assert await store.open_commands(0.0, 10) == []


class DiesAfterTaking(SqlStore):
    """A store where node a takes every command the moment it is sent, then dies."""

    async def send_command(
        self, service: str, kind: str, arguments: Mapping[str, Any], origin: str, at: float
    ) -> str:
        sent = await super().send_command(service, kind, arguments, origin, at)
        await self.take_commands("a", [sent], at)
        return sent


async def test_a_command_taken_but_not_answered_may_yet_be_applied(tmp_path: Path) -> None:
    store = DiesAfterTaking(f"sqlite:///{tmp_path}/taken.db")
    await store.open()
    try:
        relay = Relay(store, "b", clock=SystemClock(), timeout=0.3, poll=0.05)
        with pytest.raises(CommandRefused, match=r"took the command .* may still be applied"):
            await relay.run_now("web")
    finally:
        await store.close()


def test_bounds_are_checked() -> None:
    clock = SystemClock()
    with pytest.raises(ValueError, match="timeout"):
        Relay(None, "a", clock=clock, timeout=1000)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="keep"):
        Relay(None, "a", clock=clock, timeout=10, keep=5)  # type: ignore[arg-type]


class Owner:
    """A target that runs ``mine`` and records what it was asked."""

    def __init__(self, mine: set[str]) -> None:
        self.adhoc_windows: dict[str, MaintenanceWindow] = {}
        self.mine = mine
        self.ran: list[str] = []
        self.reviews = 0

    def owns(self, name: str) -> bool:
        return name in self.mine

    async def acknowledge(
        self, name: str, author: str, comment: str = "", expires: float | None = None
    ) -> Incident:
        raise RuntimeError("the disk is full")

    async def unacknowledge(self, name: str, author: str) -> Incident:
        raise CommandRefused(f"{name} is not acknowledged")

    async def run_now(self, name: str) -> None:
        self.ran.append(name)

    def review_windows(self) -> None:
        self.reviews += 1


async def found(store: SqlStore, command_id: str) -> CommandRecord:
    record = await store.command(command_id)
    assert record is not None
    return record


async def test_the_owner_takes_only_its_services_and_answers_every_one(store: SqlStore) -> None:
    owner = Owner({"web", "db"})
    relay = Relay(store, "a", clock=SystemClock())
    ran = await store.send_command("web", "run_now", {}, "b", time.time())
    theirs = await store.send_command("mail", "run_now", {}, "b", time.time())
    broken = await store.send_command("web", "unack", {}, "b", time.time())
    failing = await store.send_command("db", "ack", {"author": "ann"}, "b", time.time())
    odd = await store.send_command("db", "reboot", {}, "b", time.time())
    assert await relay.step(owner) == 4
    assert owner.ran == ["web"]
    answers = {c: await found(store, c) for c in (ran, theirs, broken, failing, odd)}
    assert {c: r.error_kind for c, r in answers.items()} == {
        ran: None,
        theirs: None,
        broken: "refused",
        failing: "refused",
        odd: "refused",
    }
    assert answers[ran].done_at is not None and answers[theirs].taken_by is None
    assert "malformed" in (answers[broken].error or "")
    assert "the disk is full" in (answers[failing].error or "")
    assert "unknown command 'reboot'" in (answers[odd].error or "")
    assert await relay.step(owner) == 0


async def test_windows_of_other_nodes_are_taken_up_and_dropped(store: SqlStore) -> None:
    owner = Owner(set())
    relay = Relay(store, "a", clock=SystemClock())
    start = datetime(2030, 1, 1, tzinfo=UTC)
    data = {"services": ["web"], "start": start.isoformat(), "end": "2030-01-02T00:00:00+00:00"}
    assert not await relay.sync_windows(owner)
    await store.save_window("w1", data)
    await store.save_window("bad", {"services": 3})
    assert await relay.sync_windows(owner)
    assert set(owner.adhoc_windows) == {"w1"} and owner.reviews == 1
    assert not await relay.sync_windows(owner)
    await store.delete_window("w1")
    assert await relay.sync_windows(owner)
    assert owner.adhoc_windows == {} and owner.reviews == 2


async def test_a_window_not_read_yet_is_removed_from_the_store(
    nodes: tuple[Daemon, Daemon],
) -> None:
    a, _ = nodes
    data = {"services": ["x"], "start": "2030-01-01T00:00:00+00:00", "end": "2030-01-02T00:00:00Z"}
    # Written by "another node" this instant: a has not read it yet.
    await a.store.save_window("fresh", data)
    assert await a.runtime.remove_maintenance("fresh")
    assert "fresh" not in await a.store.load_windows()
    assert not await a.runtime.remove_maintenance("fresh")
