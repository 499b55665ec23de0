"""The lean HTTP/1.1 path and aiohttp's give the same verdict, response by response.

A raw server on 127.0.0.1 writes exact bytes for each case of a corpus (and
hypothesis varies chunking, header casing, encodings and how the bytes are cut
into writes); each case is checked through a session without the lean client
(aiohttp alone) and one with it, and the two results must agree: status,
message (response time aside) and metrics. The server counts the requests of
each case, which tells whether the lean client answered by itself (one request)
or handed the check over to aiohttp (two).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import re
import ssl
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import aiohttp
import pytest
import trustme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pymon.checks import CheckContext, check_type, run_check
from pymon.checks.http import HttpSpec, _lean, new_session
from pymon.model import CheckResult

# Past the check's timeout in the slow cases, and how often a dripping server writes.
TIMEOUT = 0.5
DRIP = 0.05


@dataclass(frozen=True)
class Served:
    """What the server does for one case: its writes in order, then ``then``.

    ``close`` ends the connection; ``hold`` keeps it until the client goes;
    ``drip`` writes one more byte every DRIP seconds, forever.
    """

    writes: tuple[bytes, ...]
    then: Literal["close", "hold", "drip"] = "close"


class Corpus:
    """A raw HTTP server answering ``GET /NAME`` with the case NAME, counting requests."""

    def __init__(self, cases: Mapping[str, Served | Callable[[int], Served]]) -> None:
        self.cases = cases
        self.requests: Counter[str] = Counter()
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        name = head.split(b" ", 2)[1].decode()[1:]
        self.requests[name] = self.requests[name] + 1
        case = self.cases[name]
        served = case(self.port) if callable(case) else case
        for piece in served.writes:
            writer.write(piece)
            await writer.drain()
        if served.then == "hold":
            await reader.read()
        while served.then == "drip":
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(DRIP)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[Corpus]:
        """Listen on a port the kernel picks; stop, connections and all, afterwards."""
        tasks: set[asyncio.Task[None]] = set()

        async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            try:
                await self.handle(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.transport.abort()
                tasks.discard(task)

        server = await asyncio.start_server(tracked, "127.0.0.1", 0)
        self.port = int(server.sockets[0].getsockname()[1])
        try:
            yield self
        finally:
            server.close()
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()


def _ok(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 {status}\r\n{head}\r\n".encode() + body


def _sized(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    return _ok(body, f"Content-Length: {len(body)}", *headers, status=status)


def _chunked(parts: list[bytes], extension: str = "", trailers: str = "") -> bytes:
    chunks = b"".join(f"{len(p):x}{extension}\r\n".encode() + p + b"\r\n" for p in parts if p)
    return _ok(chunks + f"0\r\n{trailers}\r\n".encode(), "Transfer-Encoding: chunked")


def _raw_deflate(data: bytes) -> bytes:
    squeeze = zlib.compressobj(wbits=-15)
    return squeeze.compress(data) + squeeze.flush()


PAGE = b"<html>Hello from the corpus. Status: all fine.</html>"


def _redirect(location: str, status: str = "302 Found") -> Served:
    return Served((_sized(b"", f"Location: {location}", status=status),))


# Each case: what is served, the spec's extra keys, and whether the lean client
# answers it by itself ("lean") or hands it over to aiohttp ("aiohttp").
CASES: dict[str, tuple[Served | Callable[[int], Served], dict[str, object], str]] = {
    "plain": (
        Served((_sized(PAGE, "Content-Type: text/html"),)),
        {"contains": ["all fine"]},
        "lean",
    ),
    "missing": (Served((_sized(b"gone", status="404 Not Found"),)), {}, "lean"),
    "no-reason": (Served((_sized(b"ok", status="200"),)), {}, "lean"),
    "head": (Served((_ok(b"", "Content-Length: 1234"),)), {"method": "HEAD"}, "lean"),
    "early-hints": (
        Served(
            (
                b"HTTP/1.1 100 Continue\r\n\r\n",
                b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
                _sized(PAGE),
            )
        ),
        {"contains": ["Hello"]},
        "lean",
    ),
    "redirect-relative": (_redirect("/plain"), {"follow_redirects": True}, "lean"),
    "redirect-absolute": (
        lambda port: _redirect(f"http://127.0.0.1:{port}/plain", "301 Moved Permanently"),
        {"follow_redirects": True, "contains": ["Hello"]},
        "lean",
    ),
    "redirect-unfollowed": (_redirect("/plain"), {}, "lean"),
    "redirect-loop": (_redirect("/redirect-loop"), {"follow_redirects": True}, "lean"),
    "redirect-no-location": (
        Served((_sized(b"", status="302 Found"),)),
        {"follow_redirects": True},
        "lean",
    ),
    "redirect-to-credentials": (
        lambda port: _redirect(f"http://user:secret@127.0.0.1:{port}/plain"),
        {"follow_redirects": True},
        "aiohttp",
    ),
    "redirect-to-ftp": (_redirect("ftp://127.0.0.1/file"), {"follow_redirects": True}, "aiohttp"),
    "chunked": (
        Served((_chunked([b"Hello ", b"chunked ", b"world"], ";name=value", "X-Trailer: 1\r\n"),)),
        {"contains": ["Hello chunked world"]},
        "lean",
    ),
    "gzip": (
        Served((_sized(gzip.compress(PAGE), "Content-Encoding: gzip"),)),
        {"contains": ["all fine"]},
        "lean",
    ),
    "deflate": (
        Served((_sized(zlib.compress(PAGE), "Content-Encoding: deflate"),)),
        {"contains": ["all fine"]},
        "lean",
    ),
    "raw-deflate": (
        Served((_ok(_raw_deflate(PAGE), "Content-Encoding: deflate"),)),
        {"contains": ["all fine"]},
        "lean",
    ),
    "gzip-broken": (
        Served((_sized(b"not gzip at all", "Content-Encoding: gzip"),)),
        {"contains": ["x"]},
        "aiohttp",
    ),
    "brotli": (Served((_sized(b"??", "Content-Encoding: br"),)), {}, "aiohttp"),
    "huge": (
        Served((_ok(b"y" * 70_000, "Content-Length: 1000000000"),), "hold"),
        {"max_body": 65_536, "contains": ["never"]},
        "lean",
    ),
    "huge-gzip": (
        Served((_sized(gzip.compress(b"z" * 500_000), "Content-Encoding: gzip"),)),
        {"max_body": 10_000},
        "lean",
    ),
    "until-close": (Served((_ok(PAGE),)), {"contains": ["Hello"]}, "lean"),
    "until-close-http10": (Served((b"HTTP/1.0 200 OK\r\n\r\n" + PAGE,)), {}, "lean"),
    "slow-headers": (Served((b"HTTP/1.1 200 OK\r\n",), "drip"), {}, "lean"),
    "slow-body": (Served((_ok(b"", "Content-Length: 100000"),), "drip"), {}, "lean"),
    "closed-mid-headers": (Served((b"HTTP/1.1 200 OK\r\nContent-Le",)), {}, "lean"),
    "closed-silent": (Served(()), {}, "lean"),
    "closed-mid-body": (Served((_ok(b"short", "Content-Length: 10"),)), {}, "aiohttp"),
    "bad-status-line": (Served((b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n",)), {}, "aiohttp"),
    "not-http": (Served((b"SSH-2.0-OpenSSH_9.6\r\n\r\n",), "hold"), {}, "aiohttp"),
    "folded-header": (Served((_sized(b"ok", "X-Long: one", " two"),)), {}, "aiohttp"),
    "huge-header": (Served((_sized(b"ok", "X-Big: " + "b" * 9000),)), {}, "aiohttp"),
    "many-headers": (Served((_sized(b"ok", *["X-Many: 1"] * 200),)), {}, "aiohttp"),
    "no-content-with-body": (Served((_sized(b"ok", status="204 No Content"),)), {}, "aiohttp"),
    "header-expected": (
        Served((_sized(b"{}", "Content-Type: application/json", "X-Version: 1.2"),)),
        {"expect_header": {"x-version": "2", "Content-Type": {"regex": "^application/json"}}},
        "lean",
    ),
    "json": (
        Served((_sized(b'{"status": "ok", "items": [1, 2]}', "Content-Type: application/json"),)),
        {"expect_json": [{"path": "status", "equals": "ok"}, {"path": "items.5", "exists": True}]},
        "lean",
    ),
    "latin-1": (
        Served((_sized("café".encode("latin-1"), "Content-Type: text/plain; charset=ISO-8859-1"),)),
        {"contains": ["café"]},
        "lean",
    ),
}


def normal(result: CheckResult) -> tuple[str, str, dict[str, float]]:
    """A result without what differs between two runs: the response time, the instant."""
    metrics = {k: round(v, 3) for k, v in result.metrics.items() if k != "response_time_ms"}
    return result.status.value, re.sub(r" in \d+ ms\b", " in N ms", result.message), metrics


async def verdict(
    spec: Mapping[str, object], lean: bool, trust: ssl.SSLContext | None = None
) -> CheckResult:
    """``spec`` checked through a session with the lean client, or through aiohttp alone."""
    kind = check_type("http")
    session = new_session(trust, lean=lean)

    async def shared() -> aiohttp.ClientSession:
        return session

    try:
        ctx = CheckContext(timeout=TIMEOUT, http_session=shared)
        return await run_check(kind, kind.spec.model_validate(spec), ctx)
    finally:
        await session.close()


async def both(
    spec: Mapping[str, object], trust: ssl.SSLContext | None = None
) -> tuple[CheckResult, CheckResult]:
    """``spec`` checked through aiohttp alone, then through a session with the lean client."""
    return await verdict(spec, False, trust), await verdict(spec, True, trust)


@pytest.mark.parametrize("name", list(CASES))
async def test_corpus_gets_the_same_verdict_both_ways(name: str) -> None:
    _, extra, path = CASES[name]
    corpus = Corpus({n: s for n, (s, _, _) in CASES.items()})
    async with corpus.serving():
        spec = {"url": f"http://127.0.0.1:{corpus.port}/{name}", **extra}
        through_aiohttp = await verdict(spec, lean=False)
        asked = corpus.requests[name]
        through_lean = await verdict(spec, lean=True)
        asked_lean = corpus.requests[name] - asked
    assert normal(through_lean) == normal(through_aiohttp)
    # Handed over, the check asks once more: aiohttp's requests after the lean one's.
    assert asked_lean == asked + (path == "aiohttp"), f"{path} expected to answer"


async def test_https_gets_the_same_verdict_both_ways(
    ca: trustme.CA, https_urls: dict[str, str], web_url: str
) -> None:
    trust = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(trust)
    specs: list[dict[str, object]] = [
        {"url": f"{url}/", "contains": ["Hello"]} for url in https_urls.values()
    ]
    specs.append({"url": f"{https_urls['self_signed']}/", "verify_tls": False})
    specs.append({"url": web_url.replace("http:", "https:") + "/"})
    specs.append({"url": f"{web_url}/redirect", "follow_redirects": True})
    for spec in specs:
        through_aiohttp, through_lean = await both(spec, trust)
        assert normal(through_lean) == normal(through_aiohttp), spec


# -- generated variants ------------------------------------------------------------

_bodies = st.binary(min_size=0, max_size=3000)
_cuts = st.lists(st.integers(1, 400), max_size=8)


def _cut(data: bytes, sizes: list[int]) -> tuple[bytes, ...]:
    """``data`` in pieces of ``sizes`` (the rest in one), each written and drained alone."""
    pieces = []
    for size in sizes:
        if data:
            pieces.append(data[:size])
            data = data[size:]
    return (*pieces, data) if data else tuple(pieces)


def _casing(name: str, flips: list[bool]) -> str:
    return "".join(c.swapcase() if i < len(flips) and flips[i] else c for i, c in enumerate(name))


def _off_the_edge(max_body: int, size: int) -> int:
    """``max_body``, unless it is exactly the body's size: then whether more may follow
    depends on how soon the end arrives, on both paths alike (a matter of timing)."""
    return max_body + 1 if max_body == size else max_body


async def _same_verdict(response: bytes, cuts: list[int], spec: dict[str, object]) -> None:
    corpus = Corpus({"case": Served(_cut(response, cuts))})
    async with corpus.serving():
        through_aiohttp, through_lean = await both(
            {"url": f"http://127.0.0.1:{corpus.port}/case", **spec}
        )
    assert normal(through_lean) == normal(through_aiohttp)
    assert corpus.requests["case"] == 2, "the lean client handed a plain response over"


_settings = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(
    body=_bodies,
    sizes=st.lists(st.integers(1, 700), min_size=1, max_size=10),
    extension=st.sampled_from(["", ";a=b", ';q="x y"', ";n"]),
    trailers=st.sampled_from(["", "X-Trailer: 1\r\n", "A: 1\r\nB: 2\r\n"]),
    flips=st.lists(st.booleans(), max_size=20),
    cuts=_cuts,
    max_body=st.integers(0, 3500),
)
def test_chunked_bodies_get_the_same_verdict(
    body: bytes,
    sizes: list[int],
    extension: str,
    trailers: str,
    flips: list[bool],
    cuts: list[int],
    max_body: int,
) -> None:
    parts = []
    rest = body
    for size in sizes:
        parts.append(rest[:size])
        rest = rest[size:]
    parts.append(rest)
    response = _chunked(parts, extension, trailers).replace(
        b"Transfer-Encoding: chunked", _casing("Transfer-Encoding: chunked", flips).encode()
    )
    needle = body[len(body) // 2 :][:5].decode("latin-1")
    spec = {"max_body": _off_the_edge(max_body, len(body)), "contains": [needle]}
    asyncio.run(_same_verdict(response, cuts, spec))


@_settings
@given(
    body=_bodies,
    encoding=st.sampled_from(["identity", "gzip", "deflate", "raw-deflate"]),
    framing=st.sampled_from(["length", "close"]),
    flips=st.lists(st.booleans(), max_size=20),
    charset=st.sampled_from(["", "; charset=utf-8", '; CharSet="ISO-8859-1"', "; charset=bogus"]),
    cuts=_cuts,
    max_body=st.integers(0, 3500),
)
def test_encoded_bodies_get_the_same_verdict(
    body: bytes,
    encoding: str,
    framing: str,
    flips: list[bool],
    charset: str,
    cuts: list[int],
    max_body: int,
) -> None:
    encoded = {
        "identity": body,
        "gzip": gzip.compress(body),
        "deflate": zlib.compress(body),
        "raw-deflate": _raw_deflate(body),
    }[encoding]
    headers = [f"Content-Type: text/plain{charset}"]
    if encoding != "identity":
        coding = "deflate" if encoding == "raw-deflate" else encoding
        headers.append(f"{_casing('Content-Encoding', flips)}: {coding}")
    if framing == "length":
        headers.append(f"{_casing('Content-Length', flips[::-1])}: {len(encoded)}")
    needle = body[:4].decode("latin-1")
    spec = {
        "max_body": _off_the_edge(max_body, len(body)),
        "contains": [needle],
        "not_contains": ["\x00\x00"],
    }
    asyncio.run(_same_verdict(_ok(encoded, *headers), cuts, spec))


@pytest.mark.parametrize(
    ("extra", "lean"),
    [
        ({}, True),
        ({"method": "HEAD", "headers": {"Authorization": "Bearer x"}}, True),
        ({"basic_auth": {"username": "u", "password": "p"}}, True),
        ({"url": "http://127.0.0.1/users/me@example.org"}, True),
        ({"method": "POST", "body": "x"}, False),
        ({"method": "OPTIONS"}, False),
        ({"url": "http://user:pw@127.0.0.1/"}, False),
        ({"headers": {"accept-encoding": "br"}}, False),
        ({"headers": {"Connection": "keep-alive"}}, False),
    ],
)
async def test_one_place_decides_which_client_asks(extra: dict[str, object], lean: bool) -> None:
    spec = HttpSpec.model_validate({"url": "http://127.0.0.1/", **extra})
    async with new_session() as session:
        assert (_lean(spec, session) is not None) is lean
    async with new_session(lean=False) as session:
        assert _lean(spec, session) is None
