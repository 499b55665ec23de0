"""Scripted and hostile servers for line-based protocols (SMTP, FTP), for ``raw_server``.

Also :func:`client_sockets`, which shows the sockets this process still holds to
a port, so a test can tell that a check closed its connections (nothing leaked).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping

from tests.checks.targets import Handler

__all__ = [
    "Peer",
    "client_sockets",
    "drip",
    "endless_reply",
    "hang_up_after",
    "scripted",
    "silent_after",
]


class Peer:
    """The lines a scripted server received from its client."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []


def _verb(line: bytes) -> bytes:
    return line.split(b" ", 1)[0].strip().upper()


def scripted(peer: Peer, greeting: bytes, replies: Mapping[bytes, bytes]) -> Handler:
    """Send ``greeting``, then answer each line by its verb (``502`` for others).

    The server closes the connection after answering QUIT, or when the client does.
    """

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(greeting)
        await writer.drain()
        async for line in reader:
            peer.lines.append(line)
            writer.write(replies.get(_verb(line), b"502 command not implemented\r\n"))
            await writer.drain()
            if _verb(line) == b"QUIT":
                return

    return handler


def hang_up_after(greeting: bytes) -> Handler:
    """Send ``greeting`` and close the connection at once."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(greeting)
        await writer.drain()

    return handler


def silent_after(greeting: bytes) -> Handler:
    """Send ``greeting``, then read what comes and never answer."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(greeting)
        await writer.drain()
        await reader.read()

    return handler


def endless_reply(line: bytes) -> Handler:
    """Send ``line`` (a continuation line such as ``220-hello``) forever, as fast as it goes."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            writer.write(line * 64)
            await writer.drain()

    return handler


def drip(text: bytes, every: float = 0.2) -> Handler:
    """Send ``text`` one byte every ``every`` seconds, then wait for the client to go."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for byte in text:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(every)
        await reader.read()

    return handler


def _held(port: int) -> list[str]:
    """This process's TCP sockets whose remote port is ``port`` (Linux's /proc tables).

    Read directly: psutil parses every socket of the machine, which takes long on a
    busy one, and this runs in a polling loop.
    """
    mine: set[str] = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed since listed
            mine.add(os.readlink(f"/proc/self/fd/{fd}"))
    remote = f":{port:04X}"
    held: list[str] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                if fields[2].endswith(remote) and f"socket:[{fields[9]}]" in mine:
                    held.append(f"{fields[1]} -> {fields[2]}")
    return held


async def client_sockets(port: int, within: float = 1.0) -> list[str]:
    """This process's TCP sockets to ``port``, once they are all gone or ``within`` seconds
    passed (a closed socket is released a loop turn or so later); empty means none leaked.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        # A transport closes its socket in a callback of the next loop turn.
        await asyncio.sleep(0)
        held = _held(port)
        if not held or loop.time() >= deadline:
            return held
        await asyncio.sleep(0.02)
