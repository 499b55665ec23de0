"""ICMP echo over one raw socket per address family, shared by every ping of an event loop.

The kernel hands every ICMP packet that arrives to every raw ICMP socket open at
that moment. With a raw socket per check, checks in flight pile up as soon as the
loop falls a little behind (600-970 of them at 3,500 checks/s), every echo reply
is read and discarded hundreds of times, and the process collapses. One socket
per family reads each reply once and hands it to the check waiting for its
sequence number (docs/performance.md, "pymon capacity against pymon bench").

Used when pymon runs as root. It is also cheaper than an ICMP datagram socket per
check (what pymon uses otherwise, where net.ipv4.ping_group_range allows it; the
kernel hands those only their own replies): 0.13 against 0.18 ms of CPU a check,
no socket made and closed each time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import time
import weakref
from dataclasses import dataclass

__all__ = ["Echoes", "echoes"]

_HEADER = struct.Struct("!BBHHH")
_PAYLOAD = bytes(range(56))  # the size ping(8) sends
_RECEIVE_BUFFER = 8 << 20
_SO_RCVBUFFORCE = 33  # Linux's; the socket module does not name it


@dataclass(frozen=True, slots=True)
class _Family:
    family: socket.AddressFamily
    protocol: int
    request: int
    reply: int
    # Whether what a raw socket reads starts with the IP header (IPv4 only).
    ip_header: bool


_V4 = _Family(socket.AF_INET, socket.IPPROTO_ICMP, 8, 0, ip_header=True)
_V6 = _Family(socket.AF_INET6, socket.IPPROTO_ICMPV6, 128, 129, ip_header=False)


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


class Echoes:
    """Echo requests and their replies over one raw socket of one family."""

    def __init__(self, kind: _Family, loop: asyncio.AbstractEventLoop) -> None:
        self._kind = kind
        # PermissionError here is the caller's to report (no root, no CAP_NET_RAW).
        self._sock = socket.socket(kind.family, socket.SOCK_RAW, kind.protocol)
        self._sock.setblocking(False)
        # Every check's replies land in this one buffer now: a burst of a few hundred
        # overflowed the default (about 200 KiB) and replies were lost. Root may go
        # past net.core.rmem_max, and only root gets here.
        with contextlib.suppress(OSError):
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
            self._sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, _RECEIVE_BUFFER)
        # Closed with this object, which lives as long as its loop (the loop's
        # reader holds it; nothing here holds the loop).
        weakref.finalize(self, self._sock.close)
        self._id = os.getpid() & 0xFFFF
        self._next = 0
        self._waiting: dict[int, asyncio.Future[float]] = {}
        loop.add_reader(self._sock.fileno(), self._read)

    async def echo(self, address: str, within: float) -> float | None:
        """Send one echo request to ``address``; the round trip in milliseconds, or
        None when no reply came ``within`` seconds. OSError when it cannot
        be sent."""
        sequence = self._sequence()
        header = _HEADER.pack(self._kind.request, 0, 0, self._id, sequence)
        checksum = _checksum(header + _PAYLOAD)
        packet = _HEADER.pack(self._kind.request, 0, checksum, self._id, sequence) + _PAYLOAD
        waiter: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting[sequence] = waiter
        try:
            async with asyncio.timeout(within):
                sent = await self._send(packet, address)
                answered = await waiter
            return (answered - sent) * 1000.0
        except TimeoutError:
            return None
        finally:
            del self._waiting[sequence]

    async def _send(self, packet: bytes, address: str) -> float:
        """Send ``packet``; when it left (monotonic seconds)."""
        while True:
            try:
                sent = time.monotonic()
                self._sock.sendto(packet, (address, 0))
                return sent
            except BlockingIOError:
                # The socket's send buffer is full (thousands of requests at once):
                # try again shortly, within the caller's timeout. uvloop has no
                # sock_sendto, and one writer callback per file cannot serve many
                # waiting checks.
                await asyncio.sleep(0.001)

    def _sequence(self) -> int:
        """A sequence number no request in flight uses."""
        for _ in range(0x10000):
            sequence, self._next = self._next, (self._next + 1) & 0xFFFF
            if sequence not in self._waiting:
                return sequence
        raise OSError("65,536 echo requests are in flight already")

    def _read(self) -> None:
        """Hand each waiting check its reply; everything else is dropped."""
        while True:
            try:
                data = self._sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # an ICMP error for some earlier send: not a reply
            now = time.monotonic()
            start = (data[0] & 0x0F) * 4 if self._kind.ip_header and data else 0
            if len(data) < start + _HEADER.size:
                continue
            kind, _code, _sum, ident, sequence = _HEADER.unpack_from(data, start)
            if kind != self._kind.reply or ident != self._id:
                continue
            waiter = self._waiting.get(sequence)
            if waiter is not None and not waiter.done():
                waiter.set_result(now)


_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, Echoes]] = (
    weakref.WeakKeyDictionary()
)


def echoes(address: str) -> Echoes:
    """The running loop's shared raw socket for ``address``'s family (made on first use)."""
    loop = asyncio.get_running_loop()
    kind = _V6 if ":" in address else _V4
    per_loop = _SHARED.setdefault(loop, {})
    shared = per_loop.get(kind.family)
    if shared is None:
        shared = per_loop[kind.family] = Echoes(kind, loop)
    return shared
