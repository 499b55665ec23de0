"""DNS targets for the dns check tests: a real dnsmasq, and raw UDP servers that misbehave."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import cast

import dns.exception
import dns.message
import dns.name
import dns.query

from tests.support.servers import free_port

__all__ = ["DNSMASQ", "Respond", "dnsmasq", "udp_server"]

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"

_START_TIMEOUT = 5.0
_PORT_ATTEMPTS = 3

Respond = Callable[[bytes], bytes | None]
"""What a raw UDP server sends back for a datagram (None: nothing)."""


def ns_record(zone: str, target: str) -> str:
    """A dnsmasq ``--dns-rr`` option for an NS record (dnsmasq has no option of its own for one)."""
    wire = dns.name.from_text(target).to_wire()
    assert wire is not None  # only None when writing into a given file
    return f"--dns-rr={zone},2,{wire.hex()}"


def _answers(port: int) -> bool:
    query = dns.message.make_query("ready.invalid", "A")
    try:
        dns.query.udp(query, "127.0.0.1", port=port, timeout=0.2)
    except (dns.exception.Timeout, OSError):
        return False
    return True


def _ready(proc: subprocess.Popen[bytes], port: int) -> bool:
    deadline = time.monotonic() + _START_TIMEOUT
    while proc.poll() is None and time.monotonic() < deadline:
        if _answers(port):
            return True
        time.sleep(0.02)
    return False


def _start(port: int, records: Sequence[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            DNSMASQ,
            "--no-daemon",
            f"--port={port}",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--conf-file=/dev/null",
            # As root dnsmasq would switch to user nobody; stay who we are.
            "--user=root",
            "--group=root",
            *records,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@contextlib.contextmanager
def dnsmasq(records: Sequence[str]) -> Iterator[int]:
    """Run dnsmasq on 127.0.0.1 (UDP and TCP) serving only ``records``; yields its port.

    Names it does not know and no ``--local`` covers are REFUSED (it has no upstream).
    """
    for _ in range(_PORT_ATTEMPTS):
        port = free_port()
        proc = _start(port, records)
        if _ready(proc, port):
            break
        # Another process took the port in the meantime, or dnsmasq refused to start.
        proc.kill()
        _, err = proc.communicate()
    else:
        raise RuntimeError(f"dnsmasq did not start: {err.decode(errors='replace')}")
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's own datagram transports do not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        reply = self.respond(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


@contextlib.asynccontextmanager
async def udp_server(respond: Respond) -> AsyncIterator[int]:
    """A UDP server on 127.0.0.1 answering each datagram with ``respond``; yields its port."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Datagrams(respond), local_addr=("127.0.0.1", 0)
    )
    try:
        yield int(transport.get_extra_info("sockname")[1])
    finally:
        transport.close()
