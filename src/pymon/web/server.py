"""Serves the web app with uvicorn inside the daemon's own event loop, on a socket we bind."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from pymon.errors import PymonError

__all__ = ["WebServer"]

log = logging.getLogger("pymon")


class WebServer:
    """``app`` on ``host:port`` (0: any free port); :meth:`start` returns the bound port."""

    def __init__(self, app: FastAPI, host: str, port: int, base_path: str = "") -> None:
        self._app = app
        self._host = host
        self._port = port
        self._base_path = base_path
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Bind (a clear error when the address is taken) and serve in the background."""
        sock = _bind(self._host, self._port)
        # proxy_headers off: uvicorn would believe X-Forwarded-* from any local peer;
        # pymon.web.proxy honours them only from web.trusted_proxies.
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            proxy_headers=False,
        )
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="web")
        bound: int = sock.getsockname()[1]
        log.info("web: listening on http://%s:%d%s", self._host, bound, self._base_path)
        return bound

    async def stop(self) -> None:
        """Stop serving (open connections get two seconds to finish)."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=3)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PymonError(f"web: cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the daemon owns SIGTERM and SIGHUP."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
