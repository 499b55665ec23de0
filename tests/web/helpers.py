"""Helpers shared by the web tests: the app on a fake port and a client of it in
process, and (for the end-to-end tests) a real daemon and a client of its socket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from pymon.config.load import load_config_text
from pymon.daemon import Daemon
from pymon.engine.ports import EnginePort
from pymon.web.app import create_app

__all__ = ["app_client", "client_for", "running"]


def app_client(
    port: EnginePort,
    *,
    peer: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
    base_url: str = "http://127.0.0.1:8080",
) -> httpx.AsyncClient:
    """A client of ``create_app(port)`` in process, as if reached from ``peer`` (no socket)."""
    transport = httpx.ASGITransport(app=create_app(port), client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url=base_url, headers=headers)


@asynccontextmanager
async def running(text: str) -> AsyncIterator[Daemon]:
    """A daemon started from the YAML ``text``, stopped on the way out."""
    daemon = Daemon(load_config_text(text))
    await daemon.start()
    try:
        yield daemon
    finally:
        await daemon.stop()


def client_for(daemon: Daemon, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    """A client of the daemon's web server on 127.0.0.1."""
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.web_port}", headers=headers)
