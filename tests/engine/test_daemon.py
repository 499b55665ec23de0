"""The daemon in-process: real checks against real listeners, real SQLite, real HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pymon.config.load import load_config_text
from pymon.daemon import Daemon
from pymon.model import ServiceState, Status
from pymon.store.sql import SqlStore
from tests.support.servers import TcpListener, refused_port
from tests.support.waiting import wait_for


def config_text(db: Path, up: int, down: int, interval: str = "100ms") -> str:
    return f"""
storage: {{url: "sqlite:///{db}", flush_interval: 50ms}}
web: {{listen: "127.0.0.1:0"}}
defaults: {{interval: {interval}, timeout: 1s, flap_guard: {{failed: 2, ok: 1}}}}
services:
  - {{name: up, type: tcp, host: 127.0.0.1, port: {up}}}
  - {{name: down, type: tcp, host: 127.0.0.1, port: {down}}}
  - {{name: off, type: tcp, host: 127.0.0.1, port: {up}, enabled: false}}
"""


@pytest.fixture
async def daemon(tmp_path: Path, listener: TcpListener) -> AsyncIterator[Daemon]:
    d = Daemon(load_config_text(config_text(tmp_path / "p.db", listener.port, refused_port())))
    await d.start()
    yield d
    await d.stop()


def state(d: Daemon, name: str) -> ServiceState:
    return d.runtime.states[name]


async def test_services_reach_confirmed_states(daemon: Daemon) -> None:
    await wait_for(lambda: state(daemon, "up").confirmed and state(daemon, "down").confirmed)
    assert state(daemon, "up").status is Status.OK
    assert state(daemon, "down").status is Status.FAILED
    assert "refused" in state(daemon, "down").message


async def test_disabled_service_is_disabled_and_never_checked(daemon: Daemon) -> None:
    await wait_for(lambda: state(daemon, "up").seq >= 3)
    off = state(daemon, "off")
    assert (off.status, off.confirmed, off.last_check is not None) == (Status.DISABLED, True, True)
    assert off.seq == 1


async def test_target_going_down_turns_failed(daemon: Daemon, listener: TcpListener) -> None:
    await wait_for(lambda: state(daemon, "up").status is Status.OK)
    await listener.stop()
    await wait_for(lambda: state(daemon, "up").status is Status.FAILED)
    await wait_for(lambda: state(daemon, "up").confirmed)


async def test_api_lists_and_details_services(daemon: Daemon) -> None:
    await wait_for(lambda: state(daemon, "up").confirmed)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.web_port}") as client:
        listing = (await client.get("/api/v1/services")).json()
        assert [s["name"] for s in listing["services"]] == ["up", "down", "off"]
        detail = (await client.get("/api/v1/services/up")).json()
        for key in (
            "name",
            "type",
            "status",
            "confirmed",
            "recovering",
            "message",
            "metrics",
            "last_check",
            "last_change",
            "count",
        ):
            assert key in detail
        assert detail["status"] == "ok" and "connect_ms" in detail["metrics"]
        missing = await client.get("/api/v1/services/nope")
        assert missing.status_code == 404 and "nope" in missing.json()["error"]
        health = (await client.get("/healthz")).json()
        assert health["status"] == "ok" and health["scheduler"]["runs"] > 0


async def test_api_history_and_events(daemon: Daemon) -> None:
    await wait_for(lambda: state(daemon, "down").confirmed)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.web_port}") as client:
        history = (await client.get("/api/v1/services/down/history?limit=2")).json()
        assert len(history["results"]) == 2
        assert history["results"][0]["seq"] > history["results"][1]["seq"]
        events = (await client.get("/api/v1/events?service=down")).json()["events"]
        assert {e["kind"] for e in events} == {"changed", "confirmed", "incident_opened"}
        bad = await client.get("/api/v1/events?limit=0")
        assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "limit"


async def test_state_is_restored_before_the_first_check(
    tmp_path: Path, listener: TcpListener
) -> None:
    db = tmp_path / "p.db"
    text = config_text(db, listener.port, refused_port())
    first = Daemon(load_config_text(text))
    await first.start()
    await wait_for(lambda: first.runtime.states["down"].confirmed)
    await first.stop()
    before = first.runtime.states["down"]

    store = SqlStore(f"sqlite:///{db}")
    await store.open()
    persisted = (await store.load_states())["down"]
    await store.close()
    assert persisted == before

    second = Daemon(load_config_text(config_text(db, listener.port, refused_port(), interval="1h")))
    await second.start()
    try:
        assert second.runtime.states["down"] == before
    finally:
        await second.stop()


async def test_a_hanging_target_does_not_hold_up_other_services(
    tmp_path: Path, listener: TcpListener
) -> None:
    import socket

    with socket.socket() as silent:
        # Accepts connections (the kernel does) but never answers.
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        hang = silent.getsockname()[1]
        text = f"""
storage: {{url: "sqlite:///{tmp_path}/p.db"}}
web: {{enabled: false}}
scheduler: {{concurrency: 4}}
services:
  - {{name: up, type: tcp, host: 127.0.0.1, port: {listener.port}, interval: 100ms}}
""" + "".join(
            f"  - {{name: hang{i}, type: tcp, host: 127.0.0.1, port: {hang}, send: x,"
            f" expect: never, interval: 100ms, timeout: 1s}}\n"
            for i in range(3)
        )
        d = Daemon(load_config_text(text))
        await d.start()
        try:
            await wait_for(lambda: d.runtime.states["hang0"].seq >= 1, within=5)
            assert d.runtime.states["hang0"].status is Status.FAILED
            assert "timed out after 1s while" in d.runtime.states["hang0"].message
            # While three checks hang for a second each, "up" kept its 100 ms rhythm.
            assert d.runtime.states["up"].seq >= 5
            assert d.runtime.states["up"].status is Status.OK
        finally:
            await d.stop()


async def test_api_filters_and_paginates(daemon: Daemon) -> None:
    await wait_for(lambda: state(daemon, "down").seq >= 1 and state(daemon, "up").seq >= 1)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.web_port}") as client:
        failed = (await client.get("/api/v1/services?status=failed")).json()
        assert [s["name"] for s in failed["services"]] == ["down"]
        page = (await client.get("/api/v1/services?limit=1&offset=1")).json()
        assert page["total"] == 3 and [s["name"] for s in page["services"]] == ["down"]


def test_retry_after_defaults_to_a_third_of_the_interval_within_bounds() -> None:
    def svc(extra: str) -> float:
        text = f"services: [{{name: a, type: tcp, host: h, port: 1, {extra}}}]"
        return load_config_text(text).services[0].retry_after

    assert svc("interval: 60s") == 20.0
    assert svc("interval: 2s") == 1.0
    assert svc("interval: 500ms") == 0.5
    assert svc("interval: 60s, retry_interval: 5s") == 5.0
    assert svc("interval: 60s, retry_interval: 5m") == 60.0


async def test_unconfirmed_change_is_rechecked_at_the_retry_interval(
    tmp_path: Path, listener: TcpListener
) -> None:
    text = f"""
storage: {{url: "sqlite:///{tmp_path}/p.db"}}
web: {{enabled: false}}
services:
  - {{name: down, type: tcp, host: 127.0.0.1, port: {refused_port()}, interval: 1h,
      retry_interval: 100ms}}
  - {{name: up, type: tcp, host: 127.0.0.1, port: {listener.port}, interval: 1h,
      retry_interval: 100ms}}
"""
    d = Daemon(load_config_text(text))
    await d.start()
    try:
        d.runtime.scheduler.run_now("up")
        d.runtime.scheduler.run_now("down")
        # Hourly service, yet it reaches its flap guard (3 failures) within a second.
        await wait_for(lambda: d.runtime.states["down"].confirmed, within=5)
        assert d.runtime.states["down"].seq == 3
        # A first ok has nothing to confirm quickly: it waits for its regular run.
        assert (d.runtime.states["up"].seq, d.runtime.states["up"].confirmed) == (1, False)
    finally:
        await d.stop()


async def test_incidents_and_rollups_are_answered_written_or_not(daemon: Daemon) -> None:
    await wait_for(lambda: "down" in daemon.runtime.incidents)
    opened = daemon.runtime.incidents["down"]
    now = daemon.runtime.now()
    found = await daemon.runtime.incidents_between(None, opened.opened_at - 1, now + 1)
    assert [i.id for i in found] == [opened.id]
    assert await daemon.runtime.incidents_between(["up"], 0, now + 1) == []
    assert await daemon.runtime.incidents_between(None, 0, opened.opened_at - 1) == []
    await wait_for(lambda: daemon.runtime.states["up"].seq >= 3)
    await daemon.writer.flush()
    stored = await daemon.store.incidents_between(["down"], 0, now + 1)
    assert [i.id for i in stored] == [opened.id]
    # Every hour since start: the store's rows and, before the next flush, the writer's.
    hour = 3600
    before = daemon.runtime.states["up"].seq
    buckets = await daemon.runtime.rollups(["up"], now - hour, now + hour, hour)
    after = daemon.runtime.states["up"].seq
    assert before <= sum(b.checks for b in buckets) <= after
    assert sum(b.seconds.get("ok", 0.0) for b in buckets) > 0
