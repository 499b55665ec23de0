"""Heartbeats end to end: a job pushes over HTTP, the daemon's state follows, restarts keep it."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from pymon.config.load import load_config_text
from pymon.daemon import Daemon
from pymon.errors import ConfigError
from pymon.model import Status
from tests.support.waiting import wait_for

TOKEN = "nightly-backup-7f3a9c2e51"


def config(tmp_path: Path, interval: str = "1h") -> str:
    return f"""
storage: {{url: "sqlite:///{tmp_path}/p.db", flush_interval: 50ms}}
web: {{listen: "127.0.0.1:0"}}
services:
  - {{name: backup, type: heartbeat, token: {TOKEN}, interval: {interval}, grace: 5m}}
"""


async def test_push_turns_state_ok_and_fail_push_turns_error(tmp_path: Path) -> None:
    d = Daemon(load_config_text(config(tmp_path)))
    await d.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.web_port}") as client:
            resp = await client.post(f"/api/v1/heartbeat/{TOKEN}", params={"msg": "42 files"})
            assert resp.json() == {"service": "backup", "status": "ok"}
            await wait_for(lambda: d.runtime.states["backup"].status is Status.OK)
            assert d.runtime.states["backup"].message == "last heartbeat 0s ago: 42 files"
            await client.get(f"/api/v1/heartbeat/{TOKEN}", params={"status": "fail"})
            await wait_for(lambda: d.runtime.states["backup"].status is Status.ERROR)
    finally:
        await d.stop()


async def test_unknown_token_is_refused_without_echoing_it(tmp_path: Path) -> None:
    d = Daemon(load_config_text(config(tmp_path)))
    await d.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.web_port}") as client:
            resp = await client.post("/api/v1/heartbeat/guessed-token-000000000")
            assert resp.status_code == 404
            assert "guessed" not in resp.text
            bad = await client.post(f"/api/v1/heartbeat/{TOKEN}", params={"status": "meh"})
            assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "status"
    finally:
        await d.stop()


async def test_token_never_appears_in_api_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    d = Daemon(load_config_text(config(tmp_path)))
    await d.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.web_port}") as client:
            await client.post(f"/api/v1/heartbeat/{TOKEN}")
            await wait_for(lambda: d.runtime.states["backup"].status is Status.OK)
            pages = [
                (await client.get(path)).text
                for path in (
                    "/api/v1/services",
                    "/api/v1/services/backup",
                    "/api/v1/events",
                    "/api/v1/services/backup/history",
                    "/healthz",
                )
            ]
    finally:
        await d.stop()
    assert all(TOKEN not in page for page in pages)
    # The test's own HTTP client logs the URL it called; everything else must not.
    server_side = [r.getMessage() for r in caplog.records if not r.name.startswith("http")]
    assert server_side and not any(TOKEN in line for line in server_side)


async def test_last_push_survives_a_restart(tmp_path: Path) -> None:
    first = Daemon(load_config_text(config(tmp_path)))
    await first.start()
    assert await first.runtime.push_heartbeat(TOKEN, ok=False, message="exit 3") == "backup"
    await first.stop()

    second = Daemon(load_config_text(config(tmp_path, interval="1s")))
    await second.start()
    try:
        await wait_for(lambda: second.runtime.states["backup"].seq >= 2)
        assert second.runtime.states["backup"].status is Status.ERROR
        assert "exit 3" in second.runtime.states["backup"].message
    finally:
        await second.stop()


def test_two_services_cannot_share_a_token() -> None:
    text = f"""
services:
  - {{name: a, type: heartbeat, token: {TOKEN}}}
  - {{name: b, type: heartbeat, token: {TOKEN}}}
"""
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "t.yaml")
    (issue,) = info.value.issues
    assert str(issue).startswith("t.yaml:4: services[1].token: token already used by service 'a'")
    assert TOKEN not in str(issue)
