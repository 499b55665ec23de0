"""The web through a real daemon, over its real socket: real checks, the real engine
and store behind the port. The rest of tests/web runs on a fake port; these few
tests pin that the parts meet (and the browser suite drives the pages).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pymon.daemon import Daemon
from pymon.model import Status
from pymon.web.auth import hash_secret
from tests.support.cli import pymon
from tests.support.servers import TcpListener, free_port, refused_port
from tests.support.waiting import wait_for
from tests.web.helpers import client_for, running

TOKEN = "e2e-token-for-the-bot"


def config(tmp_path: Path, up: int, web: str = '{listen: "127.0.0.1:0"}') -> str:
    return f"""
storage: {{url: "sqlite:///{tmp_path}/p.db", flush_interval: 50ms}}
web: {web}
defaults: {{interval: 100ms, timeout: 1s, flap_guard: {{failed: 1, ok: 1}}}}
services:
  - {{name: up, type: tcp, host: 127.0.0.1, port: {up}, tags: [core]}}
  - {{name: down, type: tcp, host: 127.0.0.1, port: {refused_port()}}}
"""


@pytest.fixture
async def daemon(tmp_path: Path, listener: TcpListener) -> AsyncIterator[Daemon]:
    async with running(config(tmp_path, listener.port)) as d:
        await wait_for(
            lambda: "down" in d.runtime.incidents and d.runtime.states["up"].status is Status.OK
        )
        yield d


async def test_the_api_lists_services_with_their_real_status(daemon: Daemon) -> None:
    async with client_for(daemon) as c:
        listed = (await c.get("/api/v1/services")).json()
        history = (await c.get("/api/v1/services/down/history")).json()
        events = (await c.get("/api/v1/events", params={"service": "down"})).json()
    by_name = {s["name"]: s for s in listed["services"]}
    assert (by_name["up"]["status"], by_name["down"]["status"]) == ("ok", "failed")
    assert "connect_ms" in by_name["up"]["metrics"]
    assert "refused" in by_name["down"]["message"]
    assert by_name["down"]["incident"]["id"] == daemon.runtime.incidents["down"].id
    assert history["results"][0]["status"] == "failed"
    assert "incident_opened" in {e["kind"] for e in events["events"]}


async def test_an_ack_through_the_api_reaches_the_engine_and_the_store(daemon: Daemon) -> None:
    # No credentials: the loopback rule, judged on the real socket's peer and Host.
    async with client_for(daemon) as c:
        answer = await c.post("/api/v1/services/down/ack", json={"author": "ann", "comment": "x"})
    assert answer.status_code == 200, answer.text
    ack = daemon.runtime.incidents["down"].ack
    assert ack is not None and (ack.author, ack.comment) == ("ann", "x")
    # Durable before the answer: the store has it, not only the writer's queue.
    stored = (await daemon.store.open_incidents())["down"].ack
    assert stored is not None and stored.author == "ann"


async def test_a_maintenance_window_covers_the_service_and_is_kept(daemon: Daemon) -> None:
    async with client_for(daemon) as c:
        added = await c.post("/api/v1/maintenance", json={"services": ["down"], "duration": "1h"})
    assert added.status_code == 201, added.text
    window = added.json()
    assert daemon.runtime.states["down"].maintenance
    assert window["id"] in await daemon.store.load_windows()


async def stream_until(
    lines: AsyncIterator[str], kind: str, wanted: dict[str, Any]
) -> dict[str, Any]:
    """Read the stream's lines until a frame of ``kind`` whose data has ``wanted``."""
    event = ""
    async for line in lines:
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:") and event == kind:
            data: dict[str, Any] = json.loads(line[5:])
            if wanted.items() <= data.items():
                return data
    raise AssertionError(f"the stream ended before a {kind} frame with {wanted}")


async def test_the_stream_delivers_a_state_frame_after_a_real_check(
    daemon: Daemon, listener: TcpListener
) -> None:
    url = f"http://127.0.0.1:{daemon.web_port}/api/v1/stream"
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client,
        client.stream("GET", url) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        async with asyncio.timeout(30):  # a safety net against a hang, not a measure
            lines = response.aiter_lines()
            await stream_until(lines, "hello", {"services": 2})
            await listener.stop()
            state = await stream_until(lines, "state", {"name": "up", "status": "failed"})
    assert "refused" in state["message"]


async def test_metrics_of_a_real_daemon(daemon: Daemon) -> None:
    async with client_for(daemon) as c:
        answer = await c.get("/metrics")
    families = {f.name: f.samples for f in text_string_to_metric_families(answer.text)}
    up = {s.labels["service"]: s.value for s in families["pymon_service_up"]}
    assert up == {"up": 1.0, "down": 0.0}
    assert families["pymon_scheduler_runs"][0].value >= 2
    events = {s.labels["type"]: s.value for s in families["pymon_events"]}
    assert events["check_completed"] >= 2 and events["incident_opened"] >= 1


# -- pymon ack, the command line over the API ------------------------------------------


async def test_pymon_ack_on_the_command_line(tmp_path: Path, listener: TcpListener) -> None:
    tokens = f'[{{name: oncall-bot, token_hash: "{hash_secret(TOKEN)}"}}]'
    web = f'{{listen: "127.0.0.1:0", auth: {{tokens: {tokens}}}}}'
    async with running(config(tmp_path, listener.port, web)) as d:
        await wait_for(lambda: "down" in d.runtime.incidents)
        url = f"http://127.0.0.1:{d.web_port}"
        refused = await asyncio.to_thread(pymon, "ack", "--url", url, "down")
        assert refused.returncode == 1
        assert "401" in refused.stderr
        done = await asyncio.to_thread(
            pymon, "ack", "--url", url, "--token", TOKEN, "down", "-m", "cable pulled"
        )
        assert done.returncode == 0, done.stderr
        assert "down: failed acknowledged by" in done.stdout
        ack = d.runtime.incidents["down"].ack
        assert ack is not None and (ack.author, ack.comment) == ("oncall-bot", "cable pulled")
        undone = await asyncio.to_thread(
            pymon, "ack", "--url", url, "--token", TOKEN, "--undo", "down"
        )
        assert undone.returncode == 0, undone.stderr
        assert d.runtime.incidents["down"].ack is None


async def test_pymon_ack_says_why_it_failed(daemon: Daemon) -> None:
    url = f"http://127.0.0.1:{daemon.web_port}"
    unknown = await asyncio.to_thread(pymon, "ack", "--url", url, "nope")
    assert unknown.returncode == 1
    assert "404" in unknown.stderr and "nope" in unknown.stderr
    down = await asyncio.to_thread(pymon, "ack", "--url", f"http://127.0.0.1:{free_port()}", "x")
    assert down.returncode == 1
    assert "cannot reach pymon" in down.stderr
