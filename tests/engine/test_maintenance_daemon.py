"""Maintenance windows in the running daemon: flags, held notices released at the window's
end (without waiting for the next check), and windows added at run time kept across restarts."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from pymon.config.load import load_config_text
from pymon.config.windows import one_off
from pymon.daemon import Daemon
from pymon.model import EventKind, Notice, NoticeKind
from pymon.store.sql import SqlStore
from tests.support.servers import refused_port
from tests.support.waiting import wait_for


def config(tmp_path: Path, extra: str = "") -> str:
    return f"""
storage: {{url: "sqlite:///{tmp_path}/p.db", flush_interval: 50ms}}
web: {{enabled: false}}
defaults: {{interval: 1h, timeout: 1s, flap_guard: {{failed: 1, ok: 1}}}}
{extra}
services:
  - {{name: down, type: tcp, host: 127.0.0.1, port: {refused_port()}, tags: [db]}}
  - {{name: other, type: tcp, host: 127.0.0.1, port: {refused_port()}}}
"""


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


async def notices(tmp_path: Path) -> list[Notice]:
    store = SqlStore(f"sqlite:///{tmp_path}/p.db")
    await store.open()
    try:
        return await store.notices(limit=100)
    finally:
        await store.close()


async def test_config_window_holds_the_notice_and_shows_the_flag(tmp_path: Path) -> None:
    now = time.time()
    window = f"""
maintenance:
  - {{tags: [db], start: "{at(now - 3600).isoformat()}", end: "{at(now + 3600).isoformat()}"}}
"""
    d = Daemon(load_config_text(config(tmp_path, window)))
    await d.start()
    try:
        d.runtime.scheduler.run_now("down")
        d.runtime.scheduler.run_now("other")
        await wait_for(lambda: "down" in d.runtime.incidents and "other" in d.runtime.incidents)
        assert d.runtime.states["down"].maintenance is True
        assert d.runtime.states["other"].maintenance is False
    finally:
        await d.stop()
    assert [n.service for n in await notices(tmp_path)] == ["other"]


async def test_held_notice_goes_out_when_an_ad_hoc_window_ends(tmp_path: Path) -> None:
    d = Daemon(load_config_text(config(tmp_path)))
    await d.start()
    try:
        now = time.time()
        window = await d.runtime.add_maintenance(
            one_off(start=at(now - 1), end=at(now + 1.5), services=["down"], author="ann")
        )
        assert window.id is not None and window.created is not None
        assert d.runtime.states["down"].maintenance is True
        d.runtime.scheduler.run_now("down")
        await wait_for(lambda: "down" in d.runtime.incidents)
        assert d.runtime.incidents["down"].notices == 0
        # The service's next check is an hour away; the window's end alone releases it.
        await wait_for(lambda: d.runtime.incidents["down"].notices == 1, within=10)
        assert d.runtime.states["down"].maintenance is False
        await d.writer.flush()
        kinds = [e.kind for e in await d.store.events(service="down")]
        assert EventKind.MAINTENANCE_STARTED in kinds and EventKind.MAINTENANCE_ENDED in kinds
    finally:
        await d.stop()
    assert [(n.service, n.kind) for n in await notices(tmp_path)] == [("down", NoticeKind.PROBLEM)]


async def test_ad_hoc_windows_survive_restart_and_can_be_removed(tmp_path: Path) -> None:
    text = config(tmp_path)
    first = Daemon(load_config_text(text))
    await first.start()
    now = time.time()
    window = await first.runtime.add_maintenance(
        one_off(start=at(now - 60), end=at(now + 3600), tags=["db"], comment="disk swap")
    )
    await first.stop()

    second = Daemon(load_config_text(text))
    await second.start()
    try:
        assert [v.window for v in second.runtime.windows() if v.source == "api"] == [window]
        await second.runtime.run_now("down")
        await wait_for(lambda: second.runtime.states["down"].maintenance)
        assert window.id is not None
        assert await second.runtime.remove_maintenance(window.id) is True
        assert await second.runtime.remove_maintenance(window.id) is False
        assert second.runtime.states["down"].maintenance is False
    finally:
        await second.stop()
