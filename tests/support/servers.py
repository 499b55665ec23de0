"""Small real servers on 127.0.0.1 for daemon and CLI tests."""

from __future__ import annotations

import asyncio
import socket
import weakref

__all__ = ["TcpListener", "free_port", "refused_port", "reserved_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` (a local address) that was free a moment ago."""
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


_RESERVED: list[socket.socket] = []


def reserved_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` (a local address, 127.0.0.1 unless said) kept for this
    test run alone.

    A socket bound to it (``SO_REUSEADDR``, never listening) stays open until the
    process ends, so no other server and no outgoing connection is handed the port,
    while a server of the test (pymon's own bind with ``SO_REUSEADDR``, asyncio's
    ``create_server``) can still listen on it, stop, and listen again.
    """
    reserve = socket.socket()
    reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reserve.bind((host, 0))
    _RESERVED.append(reserve)
    port: int = reserve.getsockname()[1]
    return port


def refused_port() -> int:
    """A TCP port on 127.0.0.1 where connecting is refused, for the whole test run.

    A :func:`reserved_port` nobody listens on (like a stopped :class:`TcpListener`'s):
    unlike a ``free_port()``, no server started later can be handed it, so a service
    pointed at it fails for sure.
    """
    return reserved_port()


class TcpListener:
    """An asyncio TCP server on ``host`` (127.0.0.1 unless said) that accepts and
    closes; can be stopped and restarted.

    Its port stays reserved from creation on, also while it is not listening: a
    socket bound to it (``SO_REUSEADDR``, never listening) that the server shares
    the port with. Connecting to a stopped listener is therefore always refused:
    no other test's server can be given the port, and no outgoing connection can
    use it as its source port and connect to itself. A port that was merely free
    a moment ago (``free_port``) guarantees neither.
    """

    def __init__(self, port: int | None = None, host: str = "127.0.0.1") -> None:
        reserve = socket.socket()
        reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        reserve.bind((host, port or 0))
        self.host = host
        weakref.finalize(self, reserve.close)
        self.port: int = reserve.getsockname()[1]
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, reuse_address=True
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
