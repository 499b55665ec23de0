"""Helpers shared by the web tests: a daemon running from a config text, a client of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from pymon.config.load import load_config_text
from pymon.daemon import Daemon

__all__ = ["client_for", "running"]


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
