"""Acknowledging through the API and through `pymon ack`, with the refusals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pymon.daemon import Daemon
from tests.support.cli import pymon
from tests.support.servers import free_port, refused_port
from tests.support.waiting import wait_for
from tests.web.helpers import client_for, running


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    text = f"""
storage: {{url: "sqlite:///{tmp_path}/p.db", flush_interval: 50ms}}
web: {{listen: "127.0.0.1:0"}}
defaults: {{interval: 100ms, timeout: 1s, flap_guard: {{failed: 1}}}}
services:
  - {{name: down, type: tcp, host: 127.0.0.1, port: {refused_port()}}}
  - {{name: "we ird <b>", type: tcp, host: 127.0.0.1, port: {free_port()}, enabled: false}}
"""
    async with running(text) as d:
        await wait_for(lambda: "down" in d.runtime.incidents)
        yield d


@pytest.fixture
async def client(daemon: Daemon) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(daemon) as c:
        yield c


async def test_post_ack_acknowledges_with_author_comment_and_expiry(
    daemon: Daemon, client: httpx.AsyncClient
) -> None:
    answer = await client.post(
        "/api/v1/services/down/ack",
        json={"author": "ann", "comment": "on it", "expires": "2h"},
    )
    assert answer.status_code == 200
    ack = answer.json()["incident"]["ack"]
    assert (ack["author"], ack["comment"]) == ("ann", "on it")
    assert ack["expires"] == pytest.approx(ack["at"] + 7200, abs=1)
    detail = (await client.get("/api/v1/services/down")).json()
    assert detail["acknowledged"] is True
    assert daemon.runtime.incidents["down"].ack is not None


async def test_post_ack_without_a_body_uses_defaults(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/v1/services/down/ack")
    assert answer.status_code == 200
    assert answer.json()["incident"]["ack"]["author"] == "api"


async def test_delete_ack_takes_it_back(daemon: Daemon, client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/services/down/ack", json={"author": "ann"})
    answer = await client.delete("/api/v1/services/down/ack", params={"author": "bob"})
    assert answer.status_code == 200
    assert answer.json()["incident"]["ack"] is None
    assert daemon.runtime.incidents["down"].ack is None


async def test_ack_of_an_unknown_service_is_404(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/v1/services/nope/ack")
    assert answer.status_code == 404
    assert "nope" in answer.json()["error"]


async def test_ack_without_an_open_incident_is_409(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/v1/services/we%20ird%20%3Cb%3E/ack")
    assert answer.status_code == 409
    assert "no open incident" in answer.json()["error"]


async def test_unack_of_what_is_not_acknowledged_is_409(client: httpx.AsyncClient) -> None:
    answer = await client.delete("/api/v1/services/down/ack")
    assert answer.status_code == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"expires": "soon"}, "expires"),
        ({"author": ""}, "author"),
        ({"comment": "x" * 3000}, "comment"),
        ({"color": "red"}, "color"),
    ],
)
async def test_a_bad_field_is_named(
    client: httpx.AsyncClient, body: dict[str, str], field: str
) -> None:
    answer = await client.post("/api/v1/services/down/ack", json=body)
    assert answer.status_code == 422
    assert [f["field"] for f in answer.json()["fields"]] == [field]


async def test_notifications_lists_deliveries(client: httpx.AsyncClient) -> None:
    answer = (await client.get("/api/v1/notifications")).json()
    assert answer["deliveries"][0]["service"] == "down"
    assert answer["deliveries"][0]["channel"] == "log"
    assert set(answer["stats"]) == {"sent", "failed_attempts", "gave_up", "in_flight"}
    bad = await client.get("/api/v1/notifications", params={"state": "lost"})
    assert bad.status_code == 422


async def test_pymon_ack_on_the_command_line(daemon: Daemon) -> None:
    url = f"http://127.0.0.1:{daemon.web_port}"
    done = await asyncio.to_thread(pymon, "ack", "--url", url, "down", "-m", "cable pulled")
    assert done.returncode == 0, done.stderr
    assert "down: failed acknowledged by" in done.stdout
    assert daemon.runtime.incidents["down"].ack is not None
    assert daemon.runtime.incidents["down"].ack.comment == "cable pulled"
    undone = await asyncio.to_thread(pymon, "ack", "--url", url, "--undo", "down")
    assert undone.returncode == 0, undone.stderr
    assert daemon.runtime.incidents["down"].ack is None


async def test_pymon_ack_says_why_it_failed(daemon: Daemon) -> None:
    url = f"http://127.0.0.1:{daemon.web_port}"
    unknown = await asyncio.to_thread(pymon, "ack", "--url", url, "nope")
    assert unknown.returncode == 1
    assert "404" in unknown.stderr and "nope" in unknown.stderr
    down = await asyncio.to_thread(pymon, "ack", "--url", f"http://127.0.0.1:{free_port()}", "x")
    assert down.returncode == 1
    assert "cannot reach pymon" in down.stderr


async def test_pymon_ack_sends_its_token(tmp_path: Path) -> None:
    from pymon.web.auth import hash_secret

    text = f"""
storage: {{url: "sqlite:///{tmp_path}/p.db", flush_interval: 50ms}}
web:
  listen: "127.0.0.1:0"
  auth: {{tokens: [{{name: oncall-bot, token_hash: "{hash_secret("t0ken")}"}}]}}
defaults: {{interval: 100ms, timeout: 1s, flap_guard: {{failed: 1}}}}
services:
  - {{name: down, type: tcp, host: 127.0.0.1, port: {refused_port()}}}
"""
    async with running(text) as d:
        await wait_for(lambda: "down" in d.runtime.incidents)
        url = f"http://127.0.0.1:{d.web_port}"
        refused = await asyncio.to_thread(pymon, "ack", "--url", url, "down")
        assert refused.returncode == 1
        assert "401" in refused.stderr
        done = await asyncio.to_thread(pymon, "ack", "--url", url, "--token", "t0ken", "down")
        assert done.returncode == 0, done.stderr
        ack = d.runtime.incidents["down"].ack
        assert ack is not None
        assert ack.author == "oncall-bot"
