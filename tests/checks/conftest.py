"""Real targets for the check tests: raw TCP servers, an aiohttp web app, HTTPS with trustme.

Everything listens on 127.0.0.1 on a port the kernel picks, and is stopped (with
every connection it still holds) when the test ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping

import aiohttp
import pytest
import trustme
from aiohttp import web

from pymon.checks import CheckContext, check_type, run_check
from pymon.checks.base import Resolver, SystemResolver
from pymon.checks.http import new_session
from pymon.config.schema import CheckSpec
from pymon.model import CheckResult
from tests.checks.targets import Handler, MakeCtx, RawServer, RunCheck
from tests.checks.tls_targets import serve_app


@pytest.fixture
async def raw_server() -> AsyncIterator[RawServer]:
    """Start ``asyncio`` servers with a given connection handler; yields a starter."""
    handlers: set[asyncio.Task[None]] = set()
    servers: list[asyncio.Server] = []

    @contextlib.asynccontextmanager
    async def start(handler: Handler) -> AsyncIterator[int]:
        async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            handlers.add(task)
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
                pass
            finally:
                writer.transport.abort()
                handlers.discard(task)

        server = await asyncio.start_server(tracked, "127.0.0.1", 0)
        servers.append(server)
        yield int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
    for task in list(handlers):
        task.cancel()
    await asyncio.gather(*handlers, return_exceptions=True)
    for server in servers:
        await server.wait_closed()


async def _hello(request: web.Request) -> web.Response:
    return web.Response(text="Hello from pymon test server. Status: all fine.")


async def _not_found(request: web.Request) -> web.Response:
    return web.Response(status=404, text="nothing here")


async def _echo_header(request: web.Request) -> web.Response:
    headers = request.headers
    return web.Response(text=f"X-Probe={headers.get('X-Probe')} UA={headers.get('User-Agent')}")


async def _post(request: web.Request) -> web.Response:
    return web.Response(text=f"got {request.method}")


async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("/")


async def _loop(request: web.Request) -> web.Response:
    raise web.HTTPFound("/loop")


async def _stream_forever(request: web.Request, headers: dict[str, str]) -> web.StreamResponse:
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    chunk = b"x" * 65536
    with contextlib.suppress(ConnectionError):
        while True:
            await response.write(chunk)
    return response


async def _endless(request: web.Request) -> web.StreamResponse:
    return await _stream_forever(request, {})


async def _huge(request: web.Request) -> web.StreamResponse:
    return await _stream_forever(request, {"Content-Length": str(10**9)})


def _app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", _hello)
    app.router.add_get("/missing", _not_found)
    app.router.add_get("/echo-header", _echo_header)
    app.router.add_post("/post", _post)
    app.router.add_get("/redirect", _redirect)
    app.router.add_get("/loop", _loop)
    app.router.add_get("/endless", _endless)
    app.router.add_get("/huge", _huge)
    return app


@pytest.fixture
async def web_url() -> AsyncIterator[str]:
    """Base URL of the plain HTTP test app."""
    async with serve_app(_app()) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """The test CA that sessions built by ``session`` trust."""
    return trustme.CA()


def _server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


def _certs(ca: trustme.CA) -> Iterator[tuple[str, ssl.SSLContext]]:
    now = datetime.datetime.now(datetime.UTC)
    yield "valid", _server_context(ca.issue_cert("127.0.0.1"))
    expired = ca.issue_cert(
        "127.0.0.1",
        not_before=now - datetime.timedelta(days=30),
        not_after=now - datetime.timedelta(days=1),
    )
    yield "expired", _server_context(expired)
    yield "wrong_host", _server_context(ca.issue_cert("elsewhere.example"))
    # A CA's own certificate is self-signed; nobody trusts this one.
    stranger = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with contextlib.ExitStack() as stack:
        cert = stack.enter_context(stranger.cert_pem.tempfile())
        key = stack.enter_context(stranger.private_key_pem.tempfile())
        context.load_cert_chain(cert, key)
    yield "self_signed", context


@pytest.fixture
async def https_urls(ca: trustme.CA) -> AsyncIterator[dict[str, str]]:
    """Test app URLs over TLS, by certificate: valid, expired, wrong_host, self_signed."""
    async with contextlib.AsyncExitStack() as stack:
        urls = {}
        for name, context in _certs(ca):
            port = await stack.enter_async_context(serve_app(_app(), context))
            urls[name] = f"https://127.0.0.1:{port}"
        yield urls


@pytest.fixture
async def session(ca: trustme.CA) -> AsyncIterator[aiohttp.ClientSession]:
    """A session built as the daemon builds it, trusting the test CA instead of the system's."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(context)
    async with new_session(context) as http_session:
        yield http_session


@pytest.fixture
def make_ctx(session: aiohttp.ClientSession) -> MakeCtx:
    """Build a CheckContext: ``make_ctx(timeout=1.0, resolver=...)``."""

    async def factory() -> aiohttp.ClientSession:
        return session

    def make(timeout: float = 1.0, resolver: Resolver | None = None) -> CheckContext:
        return CheckContext(
            timeout=timeout, http_session=factory, resolver=resolver or SystemResolver()
        )

    return make


@pytest.fixture
def check(make_ctx: MakeCtx) -> RunCheck:
    """Run a check as the scheduler does: ``await check("tcp", {...}, within=TIMEOUT)``."""

    async def run(
        kind: str,
        spec: Mapping[str, object],
        within: float = 1.0,
        resolver: Resolver | None = None,
    ) -> CheckResult:
        registered = check_type(kind)
        parsed: CheckSpec = registered.spec.model_validate(spec)
        return await run_check(registered, parsed, make_ctx(within, resolver))

    return run
