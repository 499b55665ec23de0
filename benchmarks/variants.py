"""Named benchmark variants: option changes and *prototypes* of engine changes.

A prototype is applied by patching pymon in the benchmark process only, so that
a proposed engine change can be measured before anyone edits the engine. None of
this is production code; the figures it made are in ``docs/performance.md``, and
each prototype names the file and function it stands in for.

Variants compose: ``uvloop+http-raw+store-on-loop`` applies all three.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

import aiohttp

from benchmarks.harness import BenchOptions
from pymon.checks import CheckFn

__all__ = [
    "VARIANTS",
    "apply_variants",
    "http_raw_check",
    "lean_session",
    "rows_on_loop",
]

Patch = Callable[[], None]
T = TypeVar("T")
P = ParamSpec("P")


def lean_session(session: aiohttp.ClientSession) -> aiohttp.ClientSession:
    """checks/http.py new_session: the shared session without happy eyeballs.

    With one address per target (an IP literal or a resolved name tried in turn)
    happy eyeballs races nothing, yet ``aiohappyeyeballs`` still stages every connect.
    """
    connector = session.connector
    assert isinstance(connector, aiohttp.TCPConnector)
    connector._happy_eyeballs_delay = None
    return session


def _http_nohe() -> None:
    import pymon.checks._session as sessions

    made = sessions.new_session

    def session(*args: Any, **kwargs: Any) -> aiohttp.ClientSession:
        return lean_session(made(*args, **kwargs))

    # HttpSessions looks new_session up in its own module at each session it makes.
    sessions.new_session = session


def _http_aiohttp() -> None:
    """checks/_session.py new_session: every http check through aiohttp, no lean client."""
    import pymon.checks._session as sessions

    made = sessions.new_session

    def session(*args: Any, **kwargs: Any) -> aiohttp.ClientSession:
        return made(*args, **{**kwargs, "lean": False})

    sessions.new_session = session


class _OneResponse(asyncio.Protocol):
    """Sends one request; resolves ``done`` with the raw response when it is complete."""

    def __init__(self, request: bytes, done: asyncio.Future[bytes]) -> None:
        self._request = request
        self._done = done
        self._buf = bytearray()
        self._need: int | None = None
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, hence no isinstance.
        self._transport = transport
        cast(asyncio.WriteTransport, transport).write(self._request)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._need is None:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buf[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                value = head[at + 17 :].split(b"\r\n", 1)[0]
                self._need = end + 4 + int(value.strip())
            else:
                self._need = -1  # delimited by the close
        if 0 <= self._need <= len(self._buf):
            self._finish()

    def _finish(self) -> None:
        if not self._done.done():
            self._done.set_result(bytes(self._buf))
        if self._transport is not None:
            self._transport.close()

    def eof_received(self) -> bool | None:
        self._finish()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done.done():
            if exc is not None:
                self._done.set_exception(exc)
            else:
                self._done.set_result(bytes(self._buf))


def http_raw_check(full: CheckFn) -> CheckFn:
    """Headroom probe, not a proposal as it stands: a plain-HTTP GET on a bare asyncio Protocol.

    Answers how much of an http check's cost is aiohttp's client machinery. It
    handles only what the benchmark target speaks (``http://``, a method without
    a body, no redirects, a ``Content-Length`` or close-delimited body) and hands
    anything else to ``full``; it reports the same metrics and message shape.
    """
    from urllib.parse import urlsplit

    from pymon.checks.base import CheckContext
    from pymon.checks.http import HttpSpec
    from pymon.model import CheckResult, Status

    requests: dict[str, tuple[str, int, bytes]] = {}

    async def check_http_raw(spec: HttpSpec, ctx: CheckContext) -> CheckResult:
        plain = (
            spec.url.startswith("http://")
            and not spec.follow_redirects
            and spec.body is None
            and spec.json_body is None
            and spec.basic_auth is None
            and not spec.headers
            and not spec.contains
            and not spec.not_contains
        )
        if not plain:
            return await full(spec, ctx)
        target = requests.get(spec.url)
        if target is None:
            url = urlsplit(spec.url)
            host = url.hostname or ""
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            request = (
                f"{spec.method} {path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                "User-Agent: pymon\r\nConnection: close\r\n\r\n"
            ).encode()
            target = requests[spec.url] = (host, url.port or 80, request)
        host, port, request = target
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bytes] = loop.create_future()
        ctx.stage = "connecting"
        t0 = ctx.clock.monotonic()
        try:
            transport, _ = await loop.create_connection(
                lambda: _OneResponse(request, done), host, port
            )
            ctx.stage = "waiting for the response"
            try:
                raw = await done
            finally:
                transport.close()
        except OSError as exc:
            return CheckResult(Status.FAILED, f"{exc.strerror or exc} ({host} port {port})")
        response_ms = (ctx.clock.monotonic() - t0) * 1000
        head, _, body = raw.partition(b"\r\n\r\n")
        parts = head.split(b"\r\n", 1)[0].split(b" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            return CheckResult(Status.FAILED, f"invalid HTTP response: {head[:60]!r}")
        code = int(parts[1])
        reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
        metrics = {
            "status_code": float(code),
            "response_time_ms": round(response_ms, 3),
            "body_bytes": float(len(body)),
        }
        message = f"HTTP {code} {reason}".rstrip() + f", {len(body)} bytes in {response_ms:.0f} ms"
        return CheckResult(Status.OK, message, metrics)

    return check_http_raw


def _http_raw() -> None:
    from pymon.checks import REGISTRY

    kind = REGISTRY["http"]
    REGISTRY["http"] = dataclasses.replace(kind, run=http_raw_check(kind.run))


async def rows_on_loop(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """store/sql.py ``_prepare`` as it was: a batch's rows built on the event loop."""
    return fn(*args, **kwargs)


def _store_on_loop() -> None:
    import pymon.store.sql

    pymon.store.sql._prepare = rows_on_loop


def _switch_interval(seconds: float) -> Patch:
    """sys.setswitchinterval: how soon a thread waiting for the GIL gets it.

    aiosqlite runs SQLite in a thread; ``executemany`` takes the GIL back for every
    row, and with the event loop busy each hand-over waits up to the switch
    interval (5 ms by default), so a 1,000-row batch can take seconds of wall time.
    """

    def patch() -> None:
        sys.setswitchinterval(seconds)

    return patch


def _gc_threshold(young: int, middle: int, old: int) -> Patch:
    """pymon/tuning.py GC_THRESHOLD: other collector thresholds than the daemon's.

    With the daemon's (50,000, 20, 100) the middle generation's collection comes
    every twenty young ones and walks everything they left, pausing the loop for
    hundreds of milliseconds at 10,000 services.
    """

    def patch() -> None:
        import pymon.tuning

        pymon.tuning.GC_THRESHOLD = (young, middle, old)

    return patch


def _gc_freeze() -> None:
    """gc.freeze after the daemon started: what exists then is never scanned again.

    The configs, states and the rest of a started daemon live as long as it does;
    frozen, the older generations' collections no longer walk them.
    """
    import gc

    from benchmarks.harness.engine import Daemon

    start = Daemon.start

    async def start_then_freeze(self: Daemon) -> None:
        await start(self)
        gc.collect()
        gc.freeze()

    Daemon.start = start_then_freeze  # type: ignore[method-assign]


def _gc_idle(period: float, middle_every: int, full_every: int) -> Patch:
    """pymon/tuning.py relaxed_gc: no threshold-driven collection, a timed one instead.

    ``gc.disable()`` once the daemon started, then every ``period`` seconds a
    young collection; every ``middle_every``-th a middle one, every
    ``full_every``-th a full one. Taken at a turn of the loop, never in the
    middle of a check's allocations, each collection walks a bounded young
    generation (``period`` worth of churn) instead of 50,000 allocations' worth
    plus twenty rounds of survivors. Measured worse: more collections, each
    barely cheaper (docs/performance.md).
    """

    def patch() -> None:
        import gc

        from benchmarks.harness.engine import Daemon

        start = Daemon.start
        collectors: set[asyncio.Task[None]] = set()

        async def collect() -> None:
            turns = 0
            while True:
                await asyncio.sleep(period)
                turns += 1
                if turns % full_every == 0:
                    gc.collect(2)
                elif turns % middle_every == 0:
                    gc.collect(1)
                else:
                    gc.collect(0)

        async def start_then_collect(self: Daemon) -> None:
            await start(self)
            gc.disable()
            task = asyncio.create_task(collect(), name="gc-idle")
            collectors.add(task)
            task.add_done_callback(collectors.discard)

        Daemon.start = start_then_collect  # type: ignore[method-assign]

    return patch


VARIANTS: dict[str, tuple[dict[str, Any], list[Patch]]] = {
    "baseline": ({}, []),
    "uvloop": ({"loop": "uvloop"}, []),
    "conc-100": ({"concurrency": 100}, []),
    "conc-250": ({"concurrency": 250}, []),
    "conc-5000": ({"concurrency": 5000}, []),
    "flush-0.25": ({"flush_interval": 0.25}, []),
    "flush-2": ({"flush_interval": 2.0}, []),
    "ports-1": ({"ports_per_kind": 1}, []),
    "http-nohe": ({}, [_http_nohe]),
    "http-aiohttp": ({}, [_http_aiohttp]),
    "http-raw": ({}, [_http_raw]),
    "store-on-loop": ({}, [_store_on_loop]),
    "gc-freeze": ({}, [_gc_freeze]),
    "gc-mid5": ({}, [_gc_threshold(50_000, 5, 100)]),
    # 50 ms: ~7,500 young objects at 2,000 checks/s; middle every 1 s, full every 60 s.
    "gc-idle": ({}, [_gc_idle(0.05, 20, 1200)]),
    "switch-1ms": ({}, [_switch_interval(0.001)]),
}


def apply_variants(spec: str, options: BenchOptions) -> BenchOptions:
    """Apply the ``+``-joined variants in ``spec``; returns the options to run with."""
    changes: dict[str, Any] = {}
    for name in spec.split("+"):
        if name not in VARIANTS:
            known = ", ".join(VARIANTS)
            raise SystemExit(f"unknown variant {name!r} (known: {known})")
        opts, patches = VARIANTS[name]
        if patches and options.workers > 1:
            # The patches change this process; the workers are processes of their own.
            raise SystemExit(f"variant {name!r} patches pymon: not with several workers")
        changes.update(opts)
        for patch in patches:
            patch()
    return dataclasses.replace(options, **changes)
