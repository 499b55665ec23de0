"""``tcp``: connect to a port, optionally send a line and expect an answer."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import socket

from pydantic import Field

from pymon.checks.base import CheckContext, Unreachable, connect_first, os_reason
from pymon.checks.spec import CheckSpec
from pymon.model import CheckResult, Status

__all__ = ["TcpSpec", "check_tcp", "connect_and_close", "unescape"]

# A banner or reply is short; a peer streaming more than this without the expected
# text is judged on what it sent so far instead of filling memory.
MAX_REPLY = 64 * 1024

# Once a reply without the expected text has arrived, wait this long (at most a
# quarter of the timeout, so the verdict comes before it) for the rest of it, which
# may come in several segments; the expected text showing up ends the wait at once.
REPLY_SETTLE = 0.5

_CLOSE_GRACE = 1.0
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


class TcpSpec(CheckSpec):
    """Keys of a ``tcp`` service."""

    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    send: str | None = None
    expect: str | None = None


def unescape(text: str) -> str:
    r"""``\n``, ``\r``, ``\t`` and ``\\`` turned into the characters; other backslashes kept.

    So ``send: 'QUIT\r\n'`` works in any YAML quoting and on the command line, where
    the shell leaves the backslashes alone.
    """
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m[1], m[0]), text)


def _preview(data: bytes, limit: int = 80) -> str:
    shown = repr(data[:limit])
    return shown + (f" ({len(data)} bytes)" if len(data) > limit else "")


async def _close(writer: asyncio.StreamWriter) -> None:
    if writer.transport.get_write_buffer_size():
        # The peer is not reading: a graceful close would wait for it forever.
        writer.transport.abort()
        return
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(_CLOSE_GRACE):
            await writer.wait_closed()


async def _await_reply(reader: asyncio.StreamReader, expect: str, ctx: CheckContext) -> str | None:
    """Read until ``expect`` arrives; None when it did, else what went wrong."""
    wanted = expect.encode()
    settle = min(REPLY_SETTLE, ctx.timeout / 4)
    ctx.stage = f"waiting for reply containing {expect!r}"
    data = b""
    while True:
        try:
            if data:
                async with asyncio.timeout(settle):
                    chunk = await reader.read(MAX_REPLY - len(data))
            else:
                chunk = await reader.read(MAX_REPLY)
        except TimeoutError:
            return f"expected {expect!r}, got {_preview(data)}"
        if not chunk:
            got = _preview(data) if data else "nothing"
            return f"connection closed before {expect!r} came, got {got}"
        data += chunk
        if wanted in data:
            return None
        if len(data) >= MAX_REPLY:
            return f"{expect!r} not in the first {MAX_REPLY} bytes of the reply: {_preview(data)}"
        ctx.stage = f"waiting for reply containing {expect!r} (got {_preview(data, 40)} so far)"


# What a non-blocking connect returns while the handshake goes on (nearly always).
_IN_PROGRESS = frozenset({errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK})


def _settle(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


def _connected(sock: socket.SocketType) -> bool:
    """Whether the handshake finished within the connect call itself.

    It does towards this machine (loopback, and the veth pairs of local containers):
    the kernel answers the SYN before the call returns. Asking costs a syscall;
    waiting for the socket to turn writable costs two more, a future and a trip
    through the loop (docs/performance.md, "A connect that is already done").
    """
    try:
        sock.getpeername()
    except OSError:
        return False
    return True


async def connect_and_close(address: str, port: int) -> str:
    """Connect a bare socket to ``address`` (an IP literal) and close it; OSError if refused.

    A plain C socket object (``socket.SocketType``), connected by hand: uvloop's
    ``sock_connect`` looks the address up again (``getaddrinfo`` in libuv's
    thread pool) and the ``socket.socket`` wrapper converts family and type to
    enums on each use, which together cost ~30 µs of loop CPU per connect (108
    against 79 µs, docs/performance.md) for nothing an IP literal needs.
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.SocketType(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        err = sock.connect_ex((address, port))
        if err in _IN_PROGRESS and _connected(sock):
            err = 0
        elif err in _IN_PROGRESS:
            loop = asyncio.get_running_loop()
            fd = sock.fileno()
            done = loop.create_future()
            loop.add_writer(fd, _settle, done)
            try:
                await done
            finally:
                loop.remove_writer(fd)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, os.strerror(err))
    finally:
        sock.close()
    return address


async def check_tcp(spec: TcpSpec, ctx: CheckContext) -> CheckResult:
    """Connect over TCP; optionally send ``send`` and require ``expect`` in the reply.

    Most tcp services only ask whether the port accepts: a bare non-blocking socket,
    connected and closed, here, without a coroutine of its own. Streams (a transport,
    a protocol, a reader and a writer, then a graceful close) cost a third more CPU
    per check to learn the same, so only a conversation uses them.
    """
    if spec.send is not None or spec.expect is not None:
        return await _converse(spec, ctx)
    try:
        address, t0 = await connect_first(
            spec.host, spec.port, ctx, lambda address: connect_and_close(address, spec.port)
        )
    except Unreachable as exc:
        return CheckResult(Status.FAILED, str(exc))
    connect_ms = (ctx.clock.monotonic() - t0) * 1000
    where = spec.host if address == spec.host else f"{spec.host} ({address})"
    return CheckResult(
        Status.OK,
        f"connected to {where} port {spec.port} in {connect_ms:.0f} ms",
        {"connect_ms": round(connect_ms, 3)},
    )


async def _converse(spec: TcpSpec, ctx: CheckContext) -> CheckResult:
    """Connect, send ``send``, and wait for ``expect``, over streams."""

    async def connect(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
        reader, writer = await asyncio.open_connection(address, spec.port)
        return reader, writer, address

    try:
        (reader, writer, address), t0 = await connect_first(spec.host, spec.port, ctx, connect)
    except Unreachable as exc:
        return CheckResult(Status.FAILED, str(exc))
    connect_ms = (ctx.clock.monotonic() - t0) * 1000
    metrics = {"connect_ms": round(connect_ms, 3)}
    where = spec.host if address == spec.host else f"{spec.host} ({address})"
    message = f"connected to {where} port {spec.port} in {connect_ms:.0f} ms"
    try:
        if spec.send is not None:
            ctx.stage = "sending"
            writer.write(unescape(spec.send).encode())
            await writer.drain()
        if spec.expect is not None:
            expect = unescape(spec.expect)
            problem = await _await_reply(reader, expect, ctx)
            if problem is not None:
                return CheckResult(Status.ERROR, problem, metrics)
            message += f", reply contains {expect!r}"
    except OSError as exc:
        return CheckResult(Status.FAILED, f"{message}, then {os_reason(exc)}", metrics)
    finally:
        await _close(writer)
    return CheckResult(Status.OK, message, metrics)
