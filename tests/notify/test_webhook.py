"""The webhook channel against a real aiohttp receiver on 127.0.0.1 that records requests."""

from __future__ import annotations

import asyncio
import json
import math
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme
from aiohttp import web

import pymon
from pymon.config.schema import WebhookChannel
from pymon.model import Notice
from pymon.notify.base import DeliveryError
from pymon.notify.payload import notice_payload
from pymon.notify.webhook import WebhookSender, sign, verify
from tests.notify.helpers import TOKEN, make_context, make_notice
from tests.support.servers import TcpListener, free_port

SECRET = "s3cret-shared-with-the-receiver"


@dataclass
class Seen:
    """One request as the receiver got it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer_port: int


@dataclass
class Receiver:
    """An aiohttp.web server that records requests and answers as told."""

    port: int
    seen: list[Seen] = field(default_factory=list)
    status: int = 200
    body: bytes = b"thanks"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.seen.append(
            Seen(
                request.method,
                request.path,
                dict(request.headers),
                await request.read(),
                peer[1] if peer else 0,
            )
        )
        if self.hang:
            await asyncio.Event().wait()
        return web.Response(status=self.status, body=self.body, headers=self.headers)


async def start_app(handler: Any, ssl_context: ssl.SSLContext | None = None) -> tuple[int, Any]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context).start()
    return port, runner


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    box: list[Receiver] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        return await box[0].handle(request)

    port, runner = await start_app(handle)
    box.append(Receiver(port))
    yield box[0]
    await runner.cleanup()


@pytest.fixture
async def senders() -> AsyncIterator[list[WebhookSender]]:
    made: list[WebhookSender] = []
    yield made
    for sender in made:
        await sender.close()


def build(made: list[WebhookSender], url: str, **keys: Any) -> WebhookSender:
    config = WebhookChannel.model_validate({"type": "webhook", "url": url, **keys})
    made.append(WebhookSender("hook", config))
    return made[-1]


async def failure(sender: WebhookSender, notice: Notice | None = None) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        async with asyncio.timeout(30):
            await sender.send(notice or make_notice(), make_context())
    return caught.value


async def test_posts_the_payload_as_compact_sorted_json(
    receiver: Receiver, senders: list[WebhookSender]
) -> None:
    notice, ctx = make_notice(), make_context()
    await build(senders, receiver.url()).send(notice, ctx)
    [seen] = receiver.seen
    assert (seen.method, seen.path) == ("POST", "/hook")
    assert json.loads(seen.body) == notice_payload(notice, ctx, "hook")
    compact = json.dumps(notice_payload(notice, ctx, "hook"), sort_keys=True, separators=(",", ":"))
    assert seen.body == compact.encode()


async def test_sends_the_pymon_headers(receiver: Receiver, senders: list[WebhookSender]) -> None:
    notice = make_notice(key="inc-1:problem:1")
    await build(senders, receiver.url()).send(notice, make_context())
    headers = receiver.seen[0].headers
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == f"pymon/{pymon.__version__}"
    assert headers["X-Pymon-Delivery"] == "inc-1:problem:1/hook"
    assert headers["X-Pymon-Attempt"] == "1"
    assert headers["X-Pymon-Timestamp"].isdigit()


async def test_signature_verifies_over_the_exact_body(
    receiver: Receiver, senders: list[WebhookSender]
) -> None:
    await build(senders, receiver.url(), secret=SECRET).send(make_notice(), make_context())
    seen = receiver.seen[0]
    header = seen.headers["X-Pymon-Signature"]
    assert header.startswith("sha256=")
    assert verify(SECRET, seen.body, header)
    assert not verify("another secret", seen.body, header)
    assert not verify(SECRET, seen.body + b" ", header)


def test_verify_refuses_garbage_headers_without_raising() -> None:
    body = b'{"a":1}'
    assert verify(SECRET, body, sign(SECRET, body))
    for header in (None, "", "sha256=", "md5=" + "0" * 32, "sha256=zz\u00e9\udcff", "\x00" * 71):
        assert not verify(SECRET, body, header)


async def test_without_a_secret_there_is_no_signature(
    receiver: Receiver, senders: list[WebhookSender]
) -> None:
    await build(senders, receiver.url()).send(make_notice(), make_context())
    assert "X-Pymon-Signature" not in receiver.seen[0].headers


async def test_delivery_id_is_the_same_on_every_attempt(
    receiver: Receiver, senders: list[WebhookSender]
) -> None:
    sender = build(senders, receiver.url(), secret=SECRET)
    receiver.status = 503
    with pytest.raises(DeliveryError):
        await sender.send(make_notice(), make_context(attempt=1))
    receiver.status = 200
    await sender.send(make_notice(), make_context(attempt=2))
    first, second = receiver.seen
    assert first.headers["X-Pymon-Delivery"] == second.headers["X-Pymon-Delivery"]
    assert (first.headers["X-Pymon-Attempt"], second.headers["X-Pymon-Attempt"]) == ("1", "2")
    assert json.loads(second.body)["attempt"] == 2
    assert verify(SECRET, second.body, second.headers["X-Pymon-Signature"])


async def test_reuses_one_connection_between_sends(
    receiver: Receiver, senders: list[WebhookSender]
) -> None:
    sender = build(senders, receiver.url())
    await sender.send(make_notice(), make_context())
    await sender.send(make_notice(key="inc-1:problem:2"), make_context())
    first, second = receiver.seen
    assert first.peer_port == second.peer_port


async def test_sends_again_after_close(receiver: Receiver, senders: list[WebhookSender]) -> None:
    sender = build(senders, receiver.url())
    await sender.send(make_notice(), make_context())
    await sender.close()
    await sender.close()
    await sender.send(make_notice(), make_context())
    assert len(receiver.seen) == 2


@pytest.mark.parametrize("status", [500, 502, 503, 408, 425, 429])
async def test_server_trouble_and_throttling_are_retried(
    receiver: Receiver, senders: list[WebhookSender], status: int
) -> None:
    receiver.status, receiver.body = status, b"busy, try later"
    error = await failure(build(senders, receiver.url()))
    assert not error.permanent
    assert str(error) == f"webhook {receiver.url()}: HTTP {status}: busy, try later"


async def test_a_retry_after_on_throttling_is_passed_to_the_outbox(
    receiver: Receiver, senders: list[WebhookSender]
) -> None:
    receiver.status, receiver.headers = 429, {"Retry-After": "42"}
    error = await failure(build(senders, receiver.url()))
    assert (error.permanent, error.retry_after) == (False, 42.0)
    receiver.status, receiver.headers = 503, {}
    assert (await failure(build(senders, receiver.url()))).retry_after is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
async def test_client_errors_are_permanent(
    receiver: Receiver, senders: list[WebhookSender], status: int
) -> None:
    receiver.status, receiver.body = status, b"no such hook"
    error = await failure(build(senders, receiver.url()))
    assert error.permanent
    assert str(error) == f"webhook {receiver.url()}: HTTP {status}: no such hook"


async def test_an_empty_error_body_gives_the_reason_phrase(
    receiver: Receiver, senders: list[WebhookSender]
) -> None:
    receiver.status, receiver.body = 503, b""
    error = await failure(build(senders, receiver.url()))
    assert str(error) == f"webhook {receiver.url()}: HTTP 503: Service Unavailable"


async def test_a_huge_hostile_error_body_is_quoted_short_on_one_line(
    receiver: Receiver, senders: list[WebhookSender]
) -> None:
    receiver.status = 500
    receiver.body = b"line one\r\nX-Forged: yes\n\x1b[31mred\x00" + b"A" * 10_000_000
    error = await failure(build(senders, receiver.url()))
    text = str(error)
    assert "\n" not in text and "\r" not in text and "\x1b" not in text and "\x00" not in text
    assert text.startswith(f"webhook {receiver.url()}: HTTP 500: line one X-Forged: yes [31mred")
    assert text.endswith("...")
    assert len(text) < len(receiver.url()) + 250


async def test_a_big_success_body_is_still_a_delivery(
    receiver: Receiver, senders: list[WebhookSender]
) -> None:
    receiver.body = b"x" * 5_000_000
    await build(senders, receiver.url()).send(make_notice(), make_context())
    assert len(receiver.seen) == 1


async def test_a_redirect_is_a_failure_naming_its_target_and_is_not_followed(
    receiver: Receiver, senders: list[WebhookSender]
) -> None:
    receiver.status = 302
    receiver.headers = {"Location": receiver.url("/elsewhere?key=leaked")}
    error = await failure(build(senders, receiver.url()))
    assert [seen.path for seen in receiver.seen] == ["/hook"]
    assert not error.permanent
    assert f"HTTP 302: redirected to {receiver.url('/elsewhere')}" in str(error)
    assert "leaked" not in str(error)


async def test_a_permanent_redirect_is_a_permanent_failure(
    receiver: Receiver, senders: list[WebhookSender]
) -> None:
    receiver.status, receiver.headers = 308, {"Location": "/new-hook"}
    error = await failure(build(senders, receiver.url()))
    assert error.permanent
    assert "redirected to /new-hook" in str(error)


async def test_a_receiver_that_never_answers_times_out(
    receiver: Receiver, senders: list[WebhookSender]
) -> None:
    receiver.hang = True
    error = await failure(build(senders, receiver.url(), timeout="0.3s"))
    assert not error.permanent
    assert str(error) == f"webhook {receiver.url()}: no answer within 0.3s"


async def test_a_listener_that_never_speaks_http_times_out(senders: list[WebhookSender]) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        error = await failure(build(senders, f"http://127.0.0.1:{port}/", timeout=0.3))
    finally:
        server.close()
    assert str(error) == f"webhook http://127.0.0.1:{port}/: no answer within 0.3s"


async def test_connection_refused_is_retried(senders: list[WebhookSender]) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    error = await failure(build(senders, url))
    assert not error.permanent
    assert str(error) == f"webhook {url}: cannot connect: connection refused"


async def test_a_server_that_hangs_up_is_retried(senders: list[WebhookSender]) -> None:
    listener = TcpListener()
    await listener.start()
    try:
        error = await failure(build(senders, f"http://127.0.0.1:{listener.port}/"))
    finally:
        await listener.stop()
    assert not error.permanent
    assert "closed the connection without an answer" in str(error)


async def test_a_server_speaking_garbage_is_retried(senders: list[WebhookSender]) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"\x16\x03\x01 not http at all\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        error = await failure(build(senders, f"http://127.0.0.1:{port}/"))
    finally:
        server.close()
    assert not error.permanent
    assert str(error).startswith(f"webhook http://127.0.0.1:{port}/: ")


async def stalling_server(status: int) -> asyncio.Server:
    """Answers ``status`` with half of the promised body, then says nothing more."""

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 {status} Whatever\r\nContent-Length: 1000\r\n\r\n".encode())
        writer.write(b"half of the body")
        await writer.drain()
        await reader.read()
        writer.close()

    return await asyncio.start_server(stall, "127.0.0.1", 0)


async def test_an_error_status_with_a_stalled_body_reports_the_status(
    senders: list[WebhookSender],
) -> None:
    server = await stalling_server(503)
    port = server.sockets[0].getsockname()[1]
    try:
        error = await failure(build(senders, f"http://127.0.0.1:{port}/", timeout=0.3))
    finally:
        server.close()
    assert str(error) == f"webhook http://127.0.0.1:{port}/: HTTP 503: Whatever"
    assert not error.permanent


async def test_a_2xx_with_a_stalled_body_is_delivered(senders: list[WebhookSender]) -> None:
    server = await stalling_server(202)
    port = server.sockets[0].getsockname()[1]
    try:
        sender = build(senders, f"http://127.0.0.1:{port}/", timeout=0.3)
        async with asyncio.timeout(30):
            await sender.send(make_notice(), make_context())
    finally:
        server.close()


async def test_custom_headers_are_sent_but_cannot_override_pymon_headers(
    receiver: Receiver, senders: list[WebhookSender]
) -> None:
    headers = {
        "Authorization": "Bearer abc",
        "X-Pymon-Delivery": "forged",
        "x-pymon-signature": "sha256=forged",
        "X-PYMON-ATTEMPT": "99",
        "Content-Type": "text/plain",
    }
    sender = build(senders, receiver.url(), secret=SECRET, headers=headers)
    await sender.send(make_notice(key="inc-1:problem:1"), make_context())
    seen = receiver.seen[0]
    assert seen.headers["Authorization"] == "Bearer abc"
    assert seen.headers["X-Pymon-Delivery"] == "inc-1:problem:1/hook"
    assert seen.headers["X-Pymon-Attempt"] == "1"
    assert seen.headers["Content-Type"] == "application/json"
    assert verify(SECRET, seen.body, seen.headers["X-Pymon-Signature"])


@pytest.mark.parametrize(
    "headers",
    [{"X-Team": "ops\r\nX-Pymon-Signature: forged"}, {"Bad Name": "x"}, {"X-Nul": "a\x00b"}],
)
async def test_a_header_that_would_inject_is_a_permanent_failure_and_nothing_is_sent(
    receiver: Receiver, senders: list[WebhookSender], headers: dict[str, str]
) -> None:
    error = await failure(build(senders, receiver.url(), headers=headers))
    assert error.permanent
    assert "header" in str(error)
    assert receiver.seen == []


async def test_errors_never_show_credentials_or_the_query(
    receiver: Receiver, senders: list[WebhookSender]
) -> None:
    receiver.status = 503
    url = f"http://alice:pa55word@127.0.0.1:{receiver.port}/hook?token=sekrit#frag"
    error = await failure(build(senders, url))
    assert str(error).startswith(f"webhook {receiver.url()}: HTTP 503")
    for secret in ("alice", "pa55word", "sekrit", "frag"):
        assert secret not in str(error)


async def test_the_payload_never_carries_the_ack_token(
    receiver: Receiver, senders: list[WebhookSender]
) -> None:
    await build(senders, receiver.url()).send(make_notice(), make_context())
    seen = receiver.seen[0]
    assert TOKEN.encode() not in seen.body
    assert all(TOKEN not in value for value in seen.headers.values())


async def test_hostile_text_still_gives_valid_strict_json(
    receiver: Receiver, senders: list[WebhookSender]
) -> None:
    notice = make_notice(
        message='bad \udcff byte, \x00 nul, \u202e bidi, "quote" \\ and\nnewline',
        metrics={"nan": math.nan, "inf": math.inf, "ok": 1.0},
    )
    await build(senders, receiver.url()).send(notice, make_context())

    def refuse(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    document = json.loads(receiver.seen[0].body, parse_constant=refuse)
    assert document["message"] == notice.message
    assert document["metrics"] == {"nan": None, "inf": None, "ok": 1.0}


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


async def tls_receiver(authority: trustme.CA) -> tuple[int, Any, list[bytes]]:
    bodies: list[bytes] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        bodies.append(await request.read())
        return web.Response(text="ok")

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    port, runner = await start_app(handle, context)
    return port, runner, bodies


async def test_an_untrusted_certificate_is_refused(
    authority: trustme.CA, senders: list[WebhookSender]
) -> None:
    port, runner, bodies = await tls_receiver(authority)
    try:
        error = await failure(build(senders, f"https://127.0.0.1:{port}/hook"))
    finally:
        await runner.cleanup()
    assert not error.permanent
    assert "TLS" in str(error)
    assert bodies == []


async def test_verify_tls_off_accepts_any_certificate(
    authority: trustme.CA, senders: list[WebhookSender]
) -> None:
    port, runner, bodies = await tls_receiver(authority)
    try:
        sender = build(senders, f"https://127.0.0.1:{port}/hook", verify_tls=False)
        await sender.send(make_notice(), make_context())
    finally:
        await runner.cleanup()
    assert len(bodies) == 1
