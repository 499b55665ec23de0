"""Helpers for the second-opinion test: targets, and running a monitoring-plugins command.

A :class:`Target` starts a real server on 127.0.0.1 (or names a port nobody
listens on) and yields its port; a :class:`Plugin` is the command line of a
Debian monitoring-plugins program for that port; :func:`run_plugin` runs it off
the event loop (as an asyncio subprocess), so servers in the test's loop keep serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import trustme
from aiohttp import web

from pymon.model import Status
from tests.checks.dns_server import DNSMASQ, dnsmasq
from tests.checks.ftp_servers import ftp_home, ftp_server
from tests.checks.line_servers import Peer, scripted
from tests.checks.targets import RawServer, until_eof
from tests.checks.tls_targets import leaf_context, self_signed_context, serve_app, serve_smtp
from tests.support.servers import free_port

__all__ = [
    "CLOSED",
    "FTP",
    "PLUGINS",
    "SILENT",
    "SMTP",
    "UNTRUSTED",
    "WEBSITE",
    "Endpoint",
    "Kit",
    "Plugin",
    "PluginRun",
    "Target",
    "Verdict",
    "dns",
    "greeting",
    "https",
    "missing_programs",
    "plugin",
    "run_plugin",
    "verdict_of",
]

PLUGINS = Path("/usr/lib/nagios/plugins")

# Each command has its own -t; this only keeps a plugin that ignores it from hanging the suite.
_PLUGIN_EXIT_LIMIT = 10.0


class Verdict(IntEnum):
    """A plugin's exit code, and what pymon's status means in the same terms."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


_VERDICT_OF = {
    Status.OK: Verdict.OK,
    Status.WARN: Verdict.WARNING,
    Status.ERROR: Verdict.CRITICAL,
    Status.FAILED: Verdict.CRITICAL,
    Status.UNKNOWN: Verdict.UNKNOWN,
}


def verdict_of(status: Status) -> Verdict:
    """The plugin exit code that says what ``status`` says (as ``pymon check`` exits)."""
    return _VERDICT_OF[status]


@dataclass(frozen=True)
class Kit:
    """What a target needs from the test's fixtures."""

    ca: trustme.CA
    raw_server: RawServer
    tmp_path: Path


@dataclass(frozen=True)
class Endpoint:
    """A started target: its port, and the PEM file of the CA that issued its certificate."""

    port: int
    ca_file: str


@dataclass(frozen=True)
class Target:
    """A way to start a target; ``needs`` are the programs it runs."""

    start: Callable[[Kit], AbstractAsyncContextManager[int]]
    needs: tuple[str, ...] = ()


def _app() -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="Hello from pymon test server. Status: all fine.")

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404, text="nothing here")

    async def unavailable(request: web.Request) -> web.Response:
        return web.Response(status=503, text="down for maintenance")

    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_get("/missing", missing)
    app.router.add_get("/unavailable", unavailable)
    return app


WEBSITE = Target(lambda kit: serve_app(_app()))
"""A web app over plain HTTP: ``/`` says all fine, ``/missing`` 404, ``/unavailable`` 503."""


def https(days: float) -> Target:
    """The web app over TLS, with a certificate for ``localhost`` expiring in ``days``."""
    return Target(lambda kit: serve_app(_app(), leaf_context(kit.ca, "localhost", days)))


UNTRUSTED = Target(lambda kit: serve_app(_app(), self_signed_context()))
"""The web app over TLS with a self-signed certificate (valid for years)."""


@contextlib.asynccontextmanager
async def _nobody(kit: Kit) -> AsyncIterator[int]:
    yield free_port()


CLOSED = Target(_nobody)
"""A port nobody listens on: connections are refused."""

SILENT = Target(lambda kit: kit.raw_server(until_eof))
"""A server that accepts and never says a word."""


def greeting(line: bytes) -> Target:
    """A server that greets with ``line``, answers ``QUIT`` with 221 and all else with 502."""
    return Target(lambda kit: kit.raw_server(scripted(Peer(), line, {b"QUIT": b"221 Bye\r\n"})))


SMTP = Target(lambda kit: serve_smtp(None))
"""aiosmtpd, accepting everything."""


@contextlib.asynccontextmanager
async def _ftp(kit: Kit) -> AsyncIterator[int]:
    home = kit.tmp_path / "ftp"
    home.mkdir()
    with ftp_server(ftp_home(home)) as server:
        yield server.port


FTP = Target(_ftp)
"""pyftpdlib, anonymous login allowed."""


def dns(records: Sequence[str]) -> Target:
    """dnsmasq serving ``records`` only."""

    @contextlib.asynccontextmanager
    async def start(kit: Kit) -> AsyncIterator[int]:
        with dnsmasq(records) as port:
            yield port

    return Target(start, needs=(DNSMASQ,))


# check_dig runs dig (bind9-dnsutils), which monitoring-plugins does not pull in.
_HELPERS = {"check_dig": ("/usr/bin/dig",)}


@dataclass(frozen=True)
class Plugin:
    """A monitoring-plugins command line, less the target's port.

    ``wrapper`` is a plugin that runs this one (``("negate", "-w", "CRITICAL")``).
    """

    name: str
    args: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    timeout: int = 5
    wrapper: tuple[str, ...] = ()

    def argv(self, port: int) -> list[str]:
        """The command line against ``port``."""
        wrapper = [str(PLUGINS / self.wrapper[0]), *self.wrapper[1:]] if self.wrapper else []
        own = ["-H", self.host, "-p", str(port), "-t", str(self.timeout)]
        return [*wrapper, str(PLUGINS / self.name), *own, *self.args]

    @property
    def programs(self) -> tuple[str, ...]:
        """The programs the command runs."""
        names = (self.name, *self.wrapper[:1])
        return (*(str(PLUGINS / name) for name in names), *_HELPERS.get(self.name, ()))


def plugin(
    name: str, *args: str, host: str = "127.0.0.1", timeout: int = 5, wrapper: tuple[str, ...] = ()
) -> Plugin:
    """Plugin ``name`` with ``args``, run against ``host`` with ``-t timeout``."""
    return Plugin(name, args, host, timeout, wrapper)


def missing_programs(target: Target, command: Plugin) -> list[str]:
    """The programs ``target`` and ``command`` need that this host lacks."""
    return [
        program for program in (*target.needs, *command.programs) if not os.access(program, os.X_OK)
    ]


@dataclass(frozen=True)
class PluginRun:
    """How a plugin exited, and what it printed."""

    code: int
    output: str


async def run_plugin(argv: Sequence[str]) -> PluginRun:
    """Run a plugin as a subprocess; kill it if it outlives its own ``-t`` by far."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "LC_ALL": "C"},
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), _PLUGIN_EXIT_LIMIT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return PluginRun(proc.returncode, out.decode(errors="replace").strip())
