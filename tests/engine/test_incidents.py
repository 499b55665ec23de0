"""Incidents through the real daemon: opened by a real failure, notified once, acknowledged,
held for an unreachable child, and all of it back after a restart."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from pymon.config.load import load_config_text
from pymon.daemon import Daemon
from pymon.errors import PymonError
from pymon.model import Notice, NoticeKind
from pymon.store.sql import SqlStore
from tests.support.servers import refused_port
from tests.support.waiting import wait_for


def config(tmp_path: Path, closed: int, interval: str = "100ms") -> str:
    return f"""
storage: {{url: "sqlite:///{tmp_path}/p.db", flush_interval: 50ms}}
web: {{listen: "127.0.0.1:0"}}
defaults: {{interval: {interval}, timeout: 1s, flap_guard: {{failed: 1, ok: 1}}}}
services:
  - {{name: gateway, type: tcp, host: 127.0.0.1, port: {closed}}}
  - {{name: app, type: tcp, host: 127.0.0.1, port: {closed}, depends_on: [gateway]}}
"""


async def test_incident_notified_once_and_restored_after_restart(tmp_path: Path) -> None:
    text = config(tmp_path, refused_port())
    first = Daemon(load_config_text(text))
    await first.start()
    try:
        await wait_for(
            lambda: (
                "gateway" in first.runtime.incidents and first.runtime.states["gateway"].seq >= 4
            )
        )
    finally:
        await first.stop()
    incident = first.runtime.incidents["gateway"]
    notices = await _notices(tmp_path)
    assert [(n.service, n.kind) for n in notices] == [("gateway", NoticeKind.PROBLEM)]

    second = Daemon(load_config_text(text))
    await second.start()
    try:
        assert second.runtime.incidents["gateway"] == incident
        await wait_for(lambda: second.runtime.states["gateway"].seq >= incident.notices + 6)
    finally:
        await second.stop()
    assert second.runtime.incidents["gateway"].id == incident.id
    assert len(await _notices(tmp_path)) == 1


async def test_child_of_a_down_parent_is_unreachable_and_not_notified(tmp_path: Path) -> None:
    d = Daemon(load_config_text(config(tmp_path, refused_port())))
    await d.start()
    try:
        await wait_for(
            lambda: d.runtime.states["app"].seq >= 3 and "gateway" in d.runtime.incidents
        )
        await wait_for(lambda: d.runtime.states["app"].unreachable)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.web_port}") as client:
            app = (await client.get("/api/v1/services/app")).json()
    finally:
        await d.stop()
    assert app["unreachable"] is True and app["incident"] is not None
    assert {n.service for n in await _notices(tmp_path)} == {"gateway"}


async def test_acknowledgement_shows_in_the_api_and_survives_restart(tmp_path: Path) -> None:
    text = config(tmp_path, refused_port())
    first = Daemon(load_config_text(text))
    await first.start()
    try:
        await wait_for(lambda: "gateway" in first.runtime.incidents)
        acked = await first.runtime.acknowledge("gateway", "ann", "replacing the switch")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{first.web_port}") as client:
            detail = (await client.get("/api/v1/services/gateway")).json()
    finally:
        await first.stop()
    assert detail["acknowledged"] is True
    assert detail["incident"]["ack"]["comment"] == "replacing the switch"

    second = Daemon(load_config_text(text))
    await second.start()
    try:
        assert second.runtime.incidents["gateway"].ack == acked.ack
        unacked = await second.runtime.unacknowledge("gateway", "ann")
        assert unacked.ack is None
    finally:
        await second.stop()


async def test_nothing_to_acknowledge_is_a_clear_error(tmp_path: Path) -> None:
    d = Daemon(load_config_text(config(tmp_path, refused_port(), interval="1h")))
    await d.start()
    try:
        with pytest.raises(PymonError, match="gateway has no open incident"):
            await d.runtime.acknowledge("gateway", "ann")
        with pytest.raises(PymonError, match="no service named 'nope'"):
            await d.runtime.acknowledge("nope", "ann")
    finally:
        await d.stop()


async def _notices(tmp_path: Path) -> list[Notice]:
    store = SqlStore(f"sqlite:///{tmp_path}/p.db")
    await store.open()
    try:
        return await store.notices(limit=1000)
    finally:
        await store.close()
