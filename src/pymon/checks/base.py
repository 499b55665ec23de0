"""What every check receives: a CheckContext with its seams (clock, resolver, HTTP session)."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from pymon.clock import Clock, SystemClock
from pymon.model import Heartbeat

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "CheckContext",
    "Pushes",
    "Resolver",
    "SessionFactory",
    "SystemResolver",
    "Unreachable",
    "connect_first",
    "ip_literal",
    "os_reason",
    "resolve_host",
]

T = TypeVar("T")


class Resolver(Protocol):
    """Turns a host name into addresses; a fake one makes DNS failures testable."""

    async def resolve(self, host: str) -> list[str]:
        """The IP addresses of ``host``; raises OSError when it does not resolve."""
        ...


class SystemResolver:
    """The operating system's resolver, run off the event loop by asyncio."""

    async def resolve(self, host: str) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


_CHECK_LOG = logging.getLogger("pymon.checks")

SessionFactory = Callable[[], Awaitable["aiohttp.ClientSession"]]
"""Returns the shared aiohttp session (one per daemon, so checks share a connector)."""


class Pushes(Protocol):
    """What a passive check reads: the last push a job made to its service."""

    @property
    def since(self) -> float:
        """When the pushes began to count (the daemon's start): the first one's allowance."""
        ...

    def get(self, service: str) -> Heartbeat | None:
        """The last push to ``service``, if any."""
        ...


@dataclass
class CheckContext:
    """Per-run context handed to a check function.

    ``stage`` is set by the check as it goes ("connecting", "reading body"...), so a
    timeout can say where the target stopped answering. ``service`` and ``interval``
    name the run's service and its interval; ``pushes`` holds the pushes jobs made to
    the daemon (None outside a running daemon).
    """

    timeout: float
    http_session: SessionFactory
    service: str = ""
    interval: float = 0.0
    pushes: Pushes | None = None
    clock: Clock = field(default_factory=SystemClock)
    resolver: Resolver = field(default_factory=SystemResolver)
    log: logging.Logger = _CHECK_LOG
    stage: str = "starting"


@functools.lru_cache(maxsize=4096)
def ip_literal(host: str) -> str | None:
    """``host`` as an IP address literal, or None for a name (cached: once per check)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


async def resolve_host(host: str, ctx: CheckContext) -> list[str]:
    """The addresses to try for ``host``: itself when it is an IP literal, else ``ctx.resolver``'s.

    Raises OSError when the name does not resolve (or resolves to nothing).
    """
    literal = ip_literal(host)
    if literal is not None:
        return [literal]
    ctx.stage = f"resolving {host}"
    addresses = await ctx.resolver.resolve(host)
    if not addresses:
        raise OSError("no addresses")
    return addresses


def os_reason(exc: OSError) -> str:
    """A short reason for a socket error, as messages show it ("connection refused")."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return exc.strerror or str(exc) or type(exc).__name__


class Unreachable(Exception):
    """No connection to the server at all; the text says why, naming host and port."""


async def connect_first(
    host: str, port: int, ctx: CheckContext, connect: Callable[[str], Awaitable[T]]
) -> tuple[T, float]:
    """Resolve ``host`` and ``connect`` to its addresses in turn until one answers.

    Returns what ``connect`` returned and the ``ctx.clock`` time connecting began
    (after name resolution). ``connect`` raises OSError for an address that does
    not answer; when none does, raises Unreachable naming each reason.
    """
    literal = ip_literal(host)
    try:
        # An address needs no lookup, nor a coroutine to do none in.
        addresses = [literal] if literal is not None else await resolve_host(host, ctx)
    except OSError as exc:
        raise Unreachable(f"cannot resolve {host}: {os_reason(exc)}") from None
    started = ctx.clock.monotonic()
    reasons: list[str] = []
    for address in addresses:
        ctx.stage = f"connecting to {address} port {port}"
        try:
            return await connect(address), started
        except OSError as exc:
            reasons.append(os_reason(exc))
    if len(reasons) == 1:
        why = reasons[0]
    else:
        why = "; ".join(f"{a}: {r}" for a, r in zip(addresses, reasons, strict=True))
    raise Unreachable(f"{why} ({host} port {port})")
