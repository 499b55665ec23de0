"""TLS targets for the tls and http check tests: certificates from a trustme CA, servers.

A TLS server is a ``raw_server`` handler (see :func:`tls_handler`) that upgrades the
accepted connection itself; an SMTP server is aiosmtpd's protocol in the test's own
event loop; a web app is served by :func:`serve_app`. All listen on 127.0.0.1 on
ports the kernel picks and are stopped, connections included, when the test ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
from collections.abc import AsyncIterator

import trustme
from aiohttp import web
from aiosmtpd.smtp import SMTP

from tests.checks.targets import Handler

__all__ = ["leaf_context", "self_signed_context", "serve_app", "serve_smtp", "tls_handler"]


def leaf_context(
    ca: trustme.CA,
    name: str = "localhost",
    days: float = 90.0,
    now: datetime.datetime | None = None,
) -> ssl.SSLContext:
    """A server context with a certificate for ``name`` (also its CN), expiring in ``days``.

    ``days`` may be negative: the certificate then expired that long ago. ``days`` count
    from ``now`` (default: the current time); a test that also writes the expiry date
    passes the same ``now``, so that the two agree across midnight.
    """
    now = now or datetime.datetime.now(datetime.UTC)
    leaf = ca.issue_cert(
        name,
        common_name=name,
        not_before=now - datetime.timedelta(days=30) + datetime.timedelta(days=min(days, 0)),
        not_after=now + datetime.timedelta(days=days),
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    return context


def self_signed_context() -> ssl.SSLContext:
    """A server context whose certificate is its own issuer (a CA nobody trusts)."""
    stranger = trustme.CA(organization_name="stranger")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with contextlib.ExitStack() as stack:
        cert = stack.enter_context(stranger.cert_pem.tempfile())
        key = stack.enter_context(stranger.private_key_pem.tempfile())
        context.load_cert_chain(cert, key)
    return context


def tls_handler(context: ssl.SSLContext, closed: asyncio.Event | None = None) -> Handler:
    """A ``raw_server`` handler: TLS handshake with ``context``, then wait for the client to go.

    ``closed`` is set once the client has closed (or broken) the connection.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await writer.start_tls(context)
            await reader.read()
        except OSError:  # a client refusing our certificate breaks the handshake
            pass
        finally:
            if closed is not None:
                closed.set()

    return handle


class _Sink:
    """An aiosmtpd handler that accepts every message and keeps none."""

    async def handle_DATA(self, server: SMTP, session: object, envelope: object) -> str:
        return "250 OK"


@contextlib.asynccontextmanager
async def serve_smtp(tls_context: ssl.SSLContext | None) -> AsyncIterator[int]:
    """An aiosmtpd server; with ``tls_context`` it offers (and requires) STARTTLS."""
    sessions: list[SMTP] = []

    def protocol() -> SMTP:
        smtp = SMTP(
            _Sink(),
            hostname="mx.pymon.test",
            tls_context=tls_context,
            require_starttls=tls_context is not None,
        )
        sessions.append(smtp)
        return smtp

    server = await asyncio.get_running_loop().create_server(protocol, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for smtp in sessions:
            if isinstance(smtp.transport, asyncio.Transport):
                smtp.transport.abort()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def serve_app(
    app: web.Application, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[int]:
    """Serve ``app`` (over TLS with ``ssl_context``); yields the port."""
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()
