"""Running behind a reverse proxy: which forwarded headers to believe, and the public URL.

Only a peer inside ``web.trusted_proxies`` may say, through ``X-Forwarded-Proto``,
``X-Forwarded-Host``, ``X-Forwarded-Prefix`` and ``X-Forwarded-For`` (or, without
it, ``X-Real-IP``), how the request reached the proxy; from anyone else those
headers are ignored, so a client cannot make pymon build links to a host of its
choosing or pose as loopback.
:class:`ProxyMiddleware` rewrites the ASGI scope (scheme, ``Host``, client) for a
trusted peer and records the forwarded prefix; :func:`public_prefix` and
:func:`public_base_url` read the result.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from pymon.web.engine import port_of

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from pymon.engine.ports import EnginePort

__all__ = [
    "ProxyMiddleware",
    "client_address",
    "forwarded_client",
    "is_trusted",
    "public_base_url",
    "public_prefix",
    "was_forwarded",
]

log = logging.getLogger("pymon.web")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_PREFIX_KEY = "pymon_forwarded_prefix"
_FORWARDED_KEY = "pymon_forwarded"
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?", re.ASCII)
_PREFIX = re.compile(r"(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*/?", re.ASCII)
# Every header a common proxy or CDN uses to say who the client is or how it came:
# any of them means the peer is not the client, so the loopback rule must not
# take the request for a local one (nginx's X-Real-IP alone, for one, is common).
_FORWARDING_HEADERS = frozenset(
    {
        b"forwarded",
        b"forwarded-for",
        b"x-forwarded",
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-forwarded-prefix",
        b"x-forwarded-proto",
        b"x-forwarded-scheme",
        b"x-forwarded-server",
        b"x-forwarded-ssl",
        b"x-original-forwarded-for",
        b"x-original-host",
        b"x-real-ip",
        b"x-client-ip",
        b"x-cluster-client-ip",
        b"client-ip",
        b"true-client-ip",
        b"cf-connecting-ip",
        b"fastly-client-ip",
        b"x-proxyuser-ip",
    }
)


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def is_trusted(address: str | None, cidrs: Sequence[str]) -> bool:
    """Whether ``address`` (an IP as text) lies in one of ``cidrs``."""
    if not address or not cidrs:
        return False
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in _networks(tuple(cidrs)))


def forwarded_client(chain: str, cidrs: Sequence[str]) -> str | None:
    """The client an ``X-Forwarded-For`` chain names: the rightmost address not of a
    trusted proxy (each proxy appends its peer), or the leftmost if all are trusted."""
    hops = [h.strip() for h in chain.split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop, cidrs):
            return _valid_ip(hop)
    return _valid_ip(hops[0]) if hops else None


def _valid_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        return None


def _first(headers: dict[bytes, bytes], name: bytes) -> str | None:
    raw = headers.get(name)
    if raw is None:
        return None
    return raw.decode("latin-1").split(",")[0].strip() or None


class ProxyMiddleware:
    """ASGI middleware: honours forwarded headers from trusted proxies only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Rewrite ``scope`` for a request that came through a trusted proxy."""
        if scope["type"] in ("http", "websocket"):
            scope = self._rewrite(scope)
        await self.app(scope, receive, send)

    def _rewrite(self, scope: Scope) -> Scope:
        port: EnginePort = scope["app"].state.port
        cidrs = port.config.web.trusted_proxies
        state: dict[str, Any] = scope.setdefault("state", {})
        raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        names = {name for name, _ in raw_headers}
        state[_FORWARDED_KEY] = not names.isdisjoint(_FORWARDING_HEADERS)
        state[_PREFIX_KEY] = ""
        client = scope.get("client")
        if not is_trusted(client[0] if client else None, cidrs):
            return scope
        headers: dict[bytes, bytes] = {}
        for name, value in raw_headers:
            # Repeated headers read as one list, as RFC 9110 joins them.
            headers[name] = headers[name] + b"," + value if name in headers else value
        scope = dict(scope)
        proto = _first(headers, b"x-forwarded-proto")
        if proto is not None and proto.lower() in ("http", "https"):
            scheme = proto.lower()
            scope["scheme"] = scheme if scope["type"] == "http" else scheme.replace("http", "ws")
        host = _first(headers, b"x-forwarded-host")
        if host is not None and _HOST.fullmatch(host):
            scope["headers"] = [(n, v) for n, v in raw_headers if n != b"host"] + [
                (b"host", host.encode("ascii"))
            ]
        prefix = _first(headers, b"x-forwarded-prefix")
        if prefix is not None:
            if _PREFIX.fullmatch(prefix):
                state[_PREFIX_KEY] = prefix.rstrip("/")
            else:
                log.debug("ignored X-Forwarded-Prefix %r: not a URL path", prefix[:100])
        chain = headers.get(b"x-forwarded-for")
        if chain is None:
            # nginx's usual `proxy_set_header X-Real-IP $remote_addr` names the client alone.
            chain = headers.get(b"x-real-ip")
        if chain is not None:
            real = forwarded_client(chain.decode("latin-1"), cidrs)
            if real is not None:
                scope["client"] = (real, 0)
        return scope


def public_prefix(request: Request) -> str:
    """The path prefix people see: a trusted proxy's ``X-Forwarded-Prefix`` plus
    ``web.base_path``, no trailing slash ("" at the root). Prefix every link with it."""
    port = port_of(request)
    forwarded: str = getattr(request.state, _PREFIX_KEY, "")
    return f"{forwarded}{port.config.web.base_path}".rstrip("/")


def public_base_url(request: Request) -> str:
    """``scheme://host`` plus :func:`public_prefix`: the absolute URL of pymon's root."""
    host = request.headers.get("host", "")
    if not _HOST.fullmatch(host):
        # A missing or odd Host (a path, spaces): use the address the server listens on.
        server = request.scope.get("server") or ("127.0.0.1", 80)
        name = f"[{server[0]}]" if ":" in str(server[0]) else str(server[0])
        host = f"{name}:{server[1]}"
    return f"{request.url.scheme}://{host}{public_prefix(request)}"


def client_address(request: Request) -> str | None:
    """The client's IP: the peer, or the one a trusted proxy forwarded for."""
    return request.client.host if request.client else None


def was_forwarded(request: Request) -> bool:
    """Whether the request carries any forwarding header (trusted or not)."""
    return bool(getattr(request.state, _FORWARDED_KEY, False))
