"""nginx as the http and tcp target of every tool in a run with peers.

A target none of the tools is written in, and one each of them meets in production.
It runs as a child with a generated config in a temporary directory (pid, logs and
temp files there, no root needed), on reserved ports: ``ports`` for http and as
many for tcp (a tcp check connects and closes; nginx accepts and sees the
connection end). Every request gets a ``200`` with a tiny body, except the
``stub_status`` page its counters are read from. DNS stays with the target process.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from benchmarks.harness.peers.child import Child, reserved_ports
from benchmarks.harness.preflight import find_program
from benchmarks.harness.targets import TargetProcess, TargetStats

__all__ = ["NginxTarget"]

START_TIMEOUT = 10.0
STATUS_PATH = "/pymon-bench-status"

# Accepted connections, handled ones, and requests, as stub_status writes them.
_COUNTERS = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s*$", re.MULTILINE)


def _config(home: Path, http: list[int], tcp: list[int]) -> str:
    listen = "".join(f"    listen 127.0.0.1:{port} backlog=4096;\n" for port in (*http, *tcp))
    temp = "".join(
        f"  {kind}_temp_path {home}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # One worker: the target process it stands in for is one process too.
    return (
        f"worker_processes 1;\npid {home}/nginx.pid;\nerror_log {home}/error.log;\n"
        "daemon off;\nevents {\n  worker_connections 16384;\n}\n"
        f"http {{\n  access_log off;\n{temp}  server {{\n{listen}"
        f"    location = {STATUS_PATH} {{\n      stub_status;\n    }}\n"
        '    location / {\n      default_type text/plain;\n      return 200 "ok\\n";\n    }\n'
        "  }\n}\n"
    )


class NginxTarget:
    """nginx for http and tcp, the target process for dns: the :class:`Target` of a
    run with peers. Its figures: nginx's CPU (master and worker), requests (http) and
    connections that carried none (tcp), and the target process's dns answers."""

    def __init__(
        self, child: Child, http: list[int], tcp: list[int], dns: TargetProcess, version: str
    ) -> None:
        self.child = child
        self.http_ports = http
        self.tcp_ports = tcp
        self.dns = dns
        self.dns_port = dns.dns_port
        self.description = version
        self._session: aiohttp.ClientSession | None = None

    @staticmethod
    def program() -> str | None:
        """nginx's path, or None when it is not installed."""
        return find_program(["nginx"], ["/usr/sbin"])

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls, program: str, ports: int, home: Path, dns: TargetProcess
    ) -> AsyncIterator[NginxTarget]:
        """nginx started in ``home`` with ``ports`` http and tcp ports; stopped on exit."""
        await asyncio.to_thread(home.mkdir)
        with reserved_ports(2 * ports) as kept:
            http, tcp = kept[:ports], kept[ports:]
            conf = home / "nginx.conf"
            await asyncio.to_thread(conf.write_text, _config(home, http, tcp))
            argv = [program, "-p", str(home), "-c", str(conf), "-e", str(home / "error.log")]
            child = await Child.start(argv, home / "out.log")
            target = cls(child, http, tcp, dns, "nginx (one worker process)")
            try:
                await target._ready()
                yield target
            finally:
                if target._session is not None:
                    await target._session.close()
                await child.stop()

    async def _ready(self) -> None:
        self._session = aiohttp.ClientSession()
        for _ in range(round(START_TIMEOUT / 0.1)):
            if self.child.proc.returncode is not None:
                break
            with contextlib.suppress(aiohttp.ClientError, ValueError):
                await self._counters()
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"nginx did not start: {self.child.tail()}")

    async def _counters(self) -> tuple[int, int]:
        """(connections accepted, requests) so far, from stub_status."""
        assert self._session is not None
        url = f"http://127.0.0.1:{self.http_ports[0]}{STATUS_PATH}"
        async with self._session.get(url) as resp:
            match = _COUNTERS.search(await resp.text())
        if match is None:
            raise ValueError("no counters in nginx's stub_status page")
        return int(match[1]), int(match[3])

    async def stats(self) -> TargetStats:
        """CPU so far and what was answered (the status requests cancel out in a difference)."""
        accepted, requests = await self._counters()
        dns = await self.dns.stats()
        cpu = self.child.cpu() + dns.cpu
        return TargetStats(cpu, requests, accepted - requests, dns.dns)
