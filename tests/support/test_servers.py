"""The test servers themselves: a stopped TcpListener refuses, and keeps its port."""

from __future__ import annotations

import errno
import socket

import pytest

from tests.support.servers import TcpListener, refused_port


def _connect(port: int) -> int:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port))


async def test_a_listener_refuses_until_started_and_again_once_stopped() -> None:
    listener = TcpListener()
    assert _connect(listener.port) != 0
    await listener.start()
    assert _connect(listener.port) == 0
    await listener.stop()
    assert _connect(listener.port) != 0
    await listener.start()
    assert _connect(listener.port) == 0
    await listener.stop()


def test_a_stopped_listener_keeps_its_port_from_every_other_socket() -> None:
    # A service pointed at a stopped listener must fail for sure: no other server
    # may be given its port, which the kernel would otherwise do in time.
    listener = TcpListener()
    with socket.socket() as other, pytest.raises(OSError, match="already in use") as refused:
        other.bind(("127.0.0.1", listener.port))
    assert refused.value.errno == errno.EADDRINUSE


def test_a_refused_port_refuses_and_is_kept_from_every_other_socket() -> None:
    port = refused_port()
    assert _connect(port) != 0
    with socket.socket() as other, pytest.raises(OSError, match="already in use"):
        other.bind(("127.0.0.1", port))
