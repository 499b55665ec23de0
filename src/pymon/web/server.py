"""Serves the web app with uvicorn inside the daemon's own event loop, on a socket we bind.

uvicorn closes a connection idle after a response (``timeout_keep_alive``) but waits
for ever on one that never finishes its headers, and takes as many as arrive: 1,000
slowloris connections or 2,000 idle sockets were all held. Each connection here goes
through :class:`_Gate` and a header deadline (``web.connections``):

* a connection beyond ``max_total``, or beyond ``max_per_address`` from its address
  (a trusted proxy speaks for many clients, so it is not capped per address), gets a
  503 and is closed at once;
* a connection that has not sent a request's complete headers ``header_timeout``
  after it opened, or after its last response, gets a 408 and is closed. Once the
  headers are in, the deadline is off: a long answer (the live stream) is not cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import ClassVar

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from pymon.config.web import WebConnections
from pymon.errors import PymonError

__all__ = ["WebServer"]

log = logging.getLogger("pymon")


class WebServer:
    """``app`` on ``host:port`` (0: any free port); :meth:`start` returns the bound port.

    ``reuse_port``: bind with SO_REUSEPORT, so that the local workers of ``pymon run
    --workers N`` all listen on one port and the kernel spreads the connections.
    """

    def __init__(
        self,
        app: FastAPI,
        host: str,
        port: int,
        base_path: str = "",
        *,
        limits: WebConnections | None = None,
        trusted_proxies: Sequence[str] = (),
        reuse_port: bool = False,
    ) -> None:
        self._app = app
        self._reuse_port = reuse_port
        self._host = host
        self._port = port
        self._base_path = base_path
        self._limits = limits or WebConnections()
        self._gate = _Gate(self._limits, trusted_proxies)
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Bind (a clear error when the address is taken) and serve in the background."""
        sock = _bind(self._host, self._port, reuse_port=self._reuse_port)
        # proxy_headers off: uvicorn would believe X-Forwarded-* from any local peer;
        # pymon.web.proxy honours them only from web.trusted_proxies.
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            proxy_headers=False,
            http=_guarded(self._gate, self._limits.header_timeout),
            timeout_keep_alive=max(1, round(self._limits.idle_timeout)),
        )
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="web")
        bound: int = sock.getsockname()[1]
        log.info("web: listening on http://%s:%d%s", self._host, bound, self._base_path)
        return bound

    @property
    def connections(self) -> int:
        """Connections open now (admitted ones)."""
        return self._gate.total

    async def stop(self) -> None:
        """Stop serving (open connections get two seconds to finish)."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=3)


def _bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        if not hasattr(socket, "SO_REUSEPORT"):
            sock.close()
            raise PymonError("web: local workers need SO_REUSEPORT, which this system lacks")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
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


class _Gate:
    """Counts open connections, in total and per address, and admits or refuses each."""

    def __init__(self, limits: WebConnections, trusted_proxies: Sequence[str]) -> None:
        self._limits = limits
        self._proxies = [ipaddress.ip_network(n) for n in trusted_proxies]
        self._by_host: Counter[str] = Counter()
        self.total = 0

    def admit(self, host: str) -> str | None:
        """Count a new connection from ``host``; None when admitted, else why not."""
        if self.total >= self._limits.max_total:
            return "too many connections"
        if self._by_host[host] >= self._limits.max_per_address and not self._proxy(host):
            return "too many connections from this address"
        self.total += 1
        self._by_host[host] += 1
        return None

    def release(self, host: str) -> None:
        """An admitted connection from ``host`` closed."""
        self.total -= 1
        self._by_host[host] -= 1
        if self._by_host[host] <= 0:
            del self._by_host[host]

    def _proxy(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._proxies)


def _plain(status: str, message: str) -> bytes:
    body = f'{{"error": "{message}"}}'.encode()
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\nconnection: close\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


_LATE = _plain("408 Request Timeout", "the request's headers came too slowly")


def _guarded(gate: _Gate, header_timeout: float) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol behind ``gate`` and a header deadline."""

    class Guarded(_GuardedProtocol):
        _gate = gate
        _header_timeout = header_timeout

    return Guarded


class _GuardedProtocol(H11Protocol):
    _gate: ClassVar[_Gate]
    _header_timeout: ClassVar[float]
    _host = ""
    _admitted = False
    _deadline: asyncio.TimerHandle | None = None
    # The request whose headers were last complete: a new one means new headers are in.
    _seen: object = None
    # Part of a request arrived since the deadline was armed (then it says 408).
    _partial = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        self._host = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        refused = self._gate.admit(self._host)
        if refused is not None:
            log.debug("web: refused a connection from %s: %s", self._host or "?", refused)
            transport.write(_plain("503 Service Unavailable", refused))
            transport.close()
            return
        self._admitted = True
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._admitted:
            self._admitted = False
            self._gate.release(self._host)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._headers_in():
            self._partial = True

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A pipelined request may already have started again (its headers are in).
        if not self._headers_in() and not self.transport.is_closing():
            self._arm()

    def _headers_in(self) -> bool:
        if self.cycle is None or self.cycle is self._seen:
            return False
        self._seen = self.cycle
        self._disarm()
        return True

    def _arm(self) -> None:
        self._disarm()
        self._partial = False
        self._deadline = self.loop.call_later(self._header_timeout, self._late)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _late(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            # Only a client that began a request is told why; an idle one is just closed.
            if self._partial:
                self.transport.write(_LATE)
            self.transport.close()
