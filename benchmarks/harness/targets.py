"""The targets the benchmark checks: an HTTP server, a TCP listener and a DNS server
(UDP) in a process of their own.

They live in a **separate process** so that answering does not steal pymon's event
loop; its CPU is reported on its own line. This file is also that process's
program (run by its path, ``python targets.py PORTS``), so it imports nothing but
the standard library: the target process never loads pymon, nor dnspython (whose
message parsing would cost the target more than the answer below; the clients
still parse every answer with their own DNS library).
"""

from __future__ import annotations

import asyncio
import json
import resource
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

__all__ = [
    "DNS_ADDRESS",
    "Target",
    "TargetProcess",
    "TargetStats",
    "cpu_split",
    "dns_answer",
    "serve_targets",
]

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


# The address the DNS target gives for every A query.
DNS_ADDRESS = "127.0.0.1"

# Header flags of an answer: QR (a response) and AA (authoritative); RD is copied.
_ANSWER_FLAGS = 0x8400
_RD = 0x0100
_QR = 0x8000
_TYPE_A = 1
_CLASS_IN = 1
_TTL = 60
# A name compression pointer to offset 12: the question's name, right after the header.
_QUESTION_NAME = b"\xc0\x0c"


def dns_answer(query: bytes) -> bytes | None:
    """The answer to a one-question DNS query: an A query gets one record, DNS_ADDRESS;
    any other type a NOERROR without records. None for what is not such a query."""
    if len(query) < 12:
        return None
    ident, flags, questions = struct.unpack_from("!HHH", query)
    if flags & _QR or questions != 1:
        return None
    end = 12
    while end < len(query) and query[end]:
        end += query[end] + 1
    end += 5  # the root label, then type and class
    if end > len(query):
        return None
    qtype, qclass = struct.unpack_from("!HH", query, end - 4)
    records = 1 if (qtype, qclass) == (_TYPE_A, _CLASS_IN) else 0
    header = struct.pack("!HHHHHH", ident, _ANSWER_FLAGS | flags & _RD, 1, records, 0, 0)
    answer = b""
    if records:
        address = bytes(int(part) for part in DNS_ADDRESS.split("."))
        answer = _QUESTION_NAME + struct.pack("!HHIH", _TYPE_A, _CLASS_IN, _TTL, 4) + address
    return header + query[12:end] + answer


def cpu_split() -> tuple[float, float]:
    """(user, system) CPU seconds of this process, every thread included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


# -- the target process ---------------------------------------------------------------


class _Counters:
    http = 0
    tcp = 0
    dns = 0


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


class _DnsTarget(asyncio.DatagramProtocol):
    """Answers each query datagram (:func:`dns_answer`); drops what is not one."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's own datagram transport does not derive from DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        answer = dns_answer(data)
        if answer is not None:
            _Counters.dns += 1
            self._transport.sendto(answer, addr)


async def _serve_targets(ports: int) -> None:
    loop = asyncio.get_running_loop()
    servers = []
    for factory in (_HttpTarget, _TcpTarget):
        for _ in range(ports):
            servers.append(await loop.create_server(factory, "127.0.0.1", 0, backlog=BACKLOG))
    dns, _ = await loop.create_datagram_endpoint(_DnsTarget, local_addr=("127.0.0.1", 0))
    http_ports = [s.sockets[0].getsockname()[1] for s in servers[:ports]]
    tcp_ports = [s.sockets[0].getsockname()[1] for s in servers[ports:]]
    dns_port = dns.get_extra_info("sockname")[1]
    print(json.dumps({"http": http_ports, "tcp": tcp_ports, "dns": dns_port}), flush=True)
    # Commands arrive on stdin, one per line; EOF (the parent went away) ends us.
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip() == b"stats":
            counts = {"http": _Counters.http, "tcp": _Counters.tcp, "dns": _Counters.dns}
            print(json.dumps({"cpu": sum(cpu_split()), **counts}), flush=True)
    for server in servers:
        server.close()
    dns.close()


def serve_targets(ports: int) -> None:
    """Run the target servers (entry point of the target process).

    Prints ``{"http": [ports], "tcp": [ports], "dns": port}`` once listening; then
    answers each ``stats`` line on stdin with ``{"cpu": s, "http": n, "tcp": n, "dns": n}``;
    exits at EOF.
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
    dns: int


class Target(Protocol):
    """What a point's services are pointed at, and what it answered so far."""

    http_ports: list[int]
    tcp_ports: list[int]
    dns_port: int
    description: str

    async def stats(self) -> TargetStats:
        """Its CPU seconds so far and what it answered."""
        ...


class TargetProcess:
    """The parent's handle on the target process (also used by load tests)."""

    description = "pymon's target process"

    def __init__(
        self, proc: asyncio.subprocess.Process, http: list[int], tcp: list[int], dns: int
    ) -> None:
        self.proc = proc
        self.http_ports = http
        self.tcp_ports = tcp
        self.dns_port = dns

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
        return cls(proc, ports_doc["http"], ports_doc["tcp"], ports_doc["dns"])

    async def stats(self) -> TargetStats:
        """Ask the target process for its figures so far."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(b"stats\n")
        await self.proc.stdin.drain()
        doc = json.loads(await self.proc.stdout.readline())
        return TargetStats(float(doc["cpu"]), int(doc["http"]), int(doc["tcp"]), int(doc["dns"]))

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
