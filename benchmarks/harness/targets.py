"""The targets the benchmark checks: an HTTP server and a TCP listener in a process of their own.

They live in a **separate process** so that answering does not steal pymon's event
loop; its CPU is reported on its own line. This file is also that process's
program (run by its path, ``python targets.py PORTS``), so it imports nothing but
the standard library: the target process never loads pymon.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TargetProcess", "TargetStats", "cpu_split", "serve_targets"]

# This file: the target process's program.
_PROGRAM = str(Path(__file__).resolve())

# What one listening socket can queue.
BACKLOG = 4096

# The one answer of the HTTP target: short, complete, and the connection closes
# after it (pymon opens a fresh connection per check anyway).
HTTP_RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: 3\r\n"
    b"Connection: close\r\n"
    b"\r\n"
    b"ok\n"
)


def cpu_split() -> tuple[float, float]:
    """(user, system) CPU seconds of this process, every thread included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


# -- the target process ---------------------------------------------------------------


class _Counters:
    http = 0
    tcp = 0


class _HttpTarget(asyncio.Protocol):
    """Reads one request head, answers 200 with a tiny body and closes."""

    __slots__ = ("_buf", "_transport")

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if b"\r\n\r\n" in self._buf and self._transport is not None:
            _Counters.http += 1
            self._transport.write(HTTP_RESPONSE)
            self._transport.close()
            self._transport = None


class _TcpTarget(asyncio.Protocol):
    """Accepts and closes at once: all a plain ``tcp`` check needs."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        _Counters.tcp += 1
        transport.close()


async def _serve_targets(ports: int) -> None:
    loop = asyncio.get_running_loop()
    servers = []
    for factory in (_HttpTarget, _TcpTarget):
        for _ in range(ports):
            servers.append(await loop.create_server(factory, "127.0.0.1", 0, backlog=BACKLOG))
    http_ports = [s.sockets[0].getsockname()[1] for s in servers[:ports]]
    tcp_ports = [s.sockets[0].getsockname()[1] for s in servers[ports:]]
    print(json.dumps({"http": http_ports, "tcp": tcp_ports}), flush=True)
    # Commands arrive on stdin, one per line; EOF (the parent went away) ends us.
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip() == b"stats":
            stats = {"cpu": sum(cpu_split()), "http": _Counters.http, "tcp": _Counters.tcp}
            print(json.dumps(stats), flush=True)
    for server in servers:
        server.close()


def serve_targets(ports: int) -> None:
    """Run the target servers (entry point of the target process).

    Prints ``{"http": [ports], "tcp": [ports]}`` once listening; then answers each
    ``stats`` line on stdin with ``{"cpu": s, "http": n, "tcp": n}``; exits at EOF.
    The target always runs on the standard asyncio loop, so that comparing pymon
    on asyncio and uvloop changes one side only.
    """
    asyncio.run(_serve_targets(ports))


# -- the parent's handle --------------------------------------------------------------


@dataclass(slots=True)
class TargetStats:
    """The target process's CPU seconds so far and what it answered."""

    cpu: float
    http: int
    tcp: int


class TargetProcess:
    """The parent's handle on the target process (also used by load tests)."""

    def __init__(self, proc: asyncio.subprocess.Process, http: list[int], tcp: list[int]) -> None:
        self.proc = proc
        self.http_ports = http
        self.tcp_ports = tcp

    @classmethod
    async def start(cls, ports: int) -> TargetProcess:
        """Start a target process with ``ports`` listening ports per kind."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            _PROGRAM,
            str(ports),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(30):
                line = await proc.stdout.readline()
            ports_doc = json.loads(line)
        except (TimeoutError, ValueError) as exc:
            proc.kill()
            await proc.wait()
            raise RuntimeError(f"the target process did not start: {exc!r}") from exc
        return cls(proc, ports_doc["http"], ports_doc["tcp"])

    async def stats(self) -> TargetStats:
        """Ask the target process for its figures so far."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(b"stats\n")
        await self.proc.stdin.drain()
        doc = json.loads(await self.proc.stdout.readline())
        return TargetStats(float(doc["cpu"]), int(doc["http"]), int(doc["tcp"]))

    async def stop(self) -> None:
        """Close its stdin (it exits at EOF); kill it if it has not within 5 s."""
        if self.proc.returncode is None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            try:
                async with asyncio.timeout(5):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


if __name__ == "__main__":
    serve_targets(int(sys.argv[1]))
