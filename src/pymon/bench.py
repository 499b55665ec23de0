"""``pymon bench``: run N services against local targets and measure the engine.

The workload is the real daemon (scheduler, checks, rules, batch writer, SqlStore
on SQLite) with the web server off, checking half ``tcp`` and half ``http``
services against a target process on 127.0.0.1. The targets live in a **separate
process** so that answering does not steal pymon's event loop; its CPU is
reported on its own line.

What is measured, over a window that starts after a warm-up (so every service
has run and settled and the first-run transitions are not in the figures):

* sustained checks per second (results whose start falls in the window);
* lateness p50/p99: how long after its due time a check started (the
  scheduler's own figure, carried on every ResultRecord);
* CPU seconds per 1,000 checks of the pymon process (``getrusage``: every
  thread, so SQLite's and the resolver's too), of the event loop's own thread
  (the one that saturates first) and of the target process; and how much CPU
  other processes took meanwhile, since on a shared machine that moves everything;
* resident memory per service: (VmRSS once the services run minus VmRSS before
  the daemon was built) / N;
* the store's batches and write times, the loop's lag, the garbage collector's
  pauses, and every non-ok result (on a healthy run there are none; any there
  are mean the target or the client is saturated).

A timing belongs here, never in a pass/fail test.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import importlib
import json
import math
import os
import platform
import re
import resource
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from pymon import __version__
from pymon.config.schema import (
    Config,
    SchedulerConfig,
    ServiceConfig,
    StorageConfig,
    WebConfig,
)
from pymon.model import ServiceState, Status
from pymon.runtime import relaxed_gc
from pymon.store.base import ResultRecord, Store

__all__ = [
    "BenchOptions",
    "BenchReport",
    "LoopName",
    "MeteredStore",
    "TargetProcess",
    "TimelineSecond",
    "machine_info",
    "render_report",
    "render_timeline",
    "run",
    "run_bench",
    "serve_targets",
]

LoopName = Literal["asyncio", "uvloop"]

# Services per target port and kind. One listening socket can queue ``BACKLOG``
# connections; spreading keeps a short stall of the target from overflowing it.
SERVICES_PER_PORT = 1250
MAX_PORTS_PER_KIND = 8
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

# The reference phase (see ReferenceFigures): its length by default, the length of
# one round of each operation, and how many operations it keeps in flight.
REFERENCE_SECONDS = 4.0
REFERENCE_ROUND = 0.25
REFERENCE_CONCURRENCY = 50

# Loop-lag probe period: short enough to see a stall, long enough to cost nothing.
LAG_PROBE_PERIOD = 0.05

# After the window closes, checks that started inside it still have to finish and
# be written; this is how long they get before the daemon is stopped.
END_GRACE = 1.0


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """One benchmark point.

    ``warmup`` defaults to two intervals: the first interval starts every service
    (their phases are spread over it), the second confirms their state (flap
    guard), so the window sees only steady-state runs. It must be at least one
    interval. ``concurrency`` None keeps the config default.
    """

    services: int = 10_000
    interval: float = 5.0
    duration: float = 60.0
    warmup: float | None = None
    concurrency: int | None = None
    timeout: float | None = None
    flush_interval: float | None = None
    loop: LoopName = "asyncio"
    ports_per_kind: int | None = None
    workdir: Path | None = None
    reference: float = REFERENCE_SECONDS

    @property
    def effective_warmup(self) -> float:
        """The warm-up actually used (two intervals unless given)."""
        return self.warmup if self.warmup is not None else 2 * self.interval

    @property
    def effective_timeout(self) -> float:
        """Each check's timeout: the interval, capped at 10 s (the config default)."""
        return self.timeout if self.timeout is not None else min(10.0, self.interval)

    @property
    def effective_ports(self) -> int:
        """Listening ports per check kind on the target."""
        if self.ports_per_kind is not None:
            return self.ports_per_kind
        per_kind = math.ceil(self.services / 2)
        return max(1, min(MAX_PORTS_PER_KIND, math.ceil(per_kind / SERVICES_PER_PORT)))

    def validate(self) -> None:
        """Raise ValueError naming the first option that cannot make a run."""
        if self.services < 2:
            raise ValueError("services must be at least 2 (half tcp, half http)")
        if self.interval <= 0:
            raise ValueError("interval must be positive")
        if self.duration <= 0:
            raise ValueError("duration must be positive")
        if self.effective_warmup < self.interval:
            raise ValueError(
                f"warmup ({self.effective_warmup:g}s) must be at least one interval "
                f"({self.interval:g}s): until then not every service has run"
            )
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.ports_per_kind is not None and self.ports_per_kind < 1:
            raise ValueError("ports per kind must be at least 1")
        if self.reference < 0:
            raise ValueError("reference must not be negative")


@dataclass(slots=True)
class RunFigures:
    """How the run was set up and what it did."""

    services: int
    tcp: int
    http: int
    interval_s: float
    warmup_s: float
    window_s: float
    concurrency: int
    timeout_s: float
    flush_interval_s: float
    loop: str
    ports_per_kind: int


@dataclass(slots=True)
class CheckFigures:
    """Checks in the window: how many, how fast, how many did not come back ok."""

    total: int
    per_second: float
    expected_per_second: float
    ok: int
    failed: int
    by_status: dict[str, int]
    failure_samples: dict[str, int]
    skipped_runs: int


@dataclass(slots=True)
class Percentiles:
    """p50/p90/p99/max of a set of samples, in milliseconds."""

    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    samples: int

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Percentiles:
        """Percentiles (nearest rank) of ``seconds``, reported in ms; zeros when empty."""
        if not seconds:
            return cls(0.0, 0.0, 0.0, 0.0, 0)
        ordered = sorted(seconds)

        def rank(p: float) -> float:
            i = min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))
            return round(ordered[i] * 1000, 3)

        return cls(rank(50), rank(90), rank(99), round(ordered[-1] * 1000, 3), len(ordered))


@dataclass(slots=True)
class CpuFigures:
    """CPU seconds over the window (user + system, all threads) of each process."""

    pymon_s: float
    pymon_user_s: float
    pymon_system_s: float
    pymon_per_1000_checks_s: float
    pymon_utilization: float
    loop_thread_s: float
    loop_thread_per_1000_checks_s: float
    loop_thread_utilization: float
    target_s: float
    target_per_1000_checks_s: float
    target_utilization: float
    machine_busy_cores: float
    others_cores: float


@dataclass(slots=True)
class MemoryFigures:
    """Resident memory of the pymon process."""

    rss_before_mb: float
    rss_running_mb: float
    per_service_kb: float


@dataclass(slots=True)
class StoreFigures:
    """What the batch writer sent to the store during the window."""

    batches: int
    results_written: int
    mean_batch: float
    write_ms: Percentiles
    write_busy: float
    writer_failures: int


@dataclass(slots=True)
class TimelineSecond:
    """One second of the whole run, counted from the daemon's start.

    ``checks`` started in it, the latest of them (``max_lateness_ms``), the store
    batches that began in it and the longest of their writes; ``in_window`` marks
    the seconds the headline figures cover. Start-up shows here, where the window
    (after the warm-up) no longer sees it.
    """

    second: int
    checks: int
    max_lateness_ms: float
    batches: int
    longest_write_ms: float
    in_window: bool


@dataclass(slots=True)
class GcFigures:
    """Python's cyclic garbage collector in the window: each collection pauses the loop."""

    collections: dict[str, int]
    pause_s: float
    pause_share: float
    max_pause_ms: float


class _GcMeter:
    """A ``gc.callbacks`` hook timing every collection while installed."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []  # (generation, seconds)
        self._t0: float | None = None

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        elif self._t0 is not None:
            self.pauses.append((info["generation"], time.perf_counter() - self._t0))
            self._t0 = None

    def figures(self, window: float) -> GcFigures:
        total = sum(seconds for _, seconds in self.pauses)
        return GcFigures(
            collections=dict(Counter(f"gen{gen}" for gen, _ in self.pauses)),
            pause_s=round(total, 3),
            pause_share=round(total / window, 4) if window else 0.0,
            max_pause_ms=round(max((s for _, s in self.pauses), default=0.0) * 1000, 3),
        )


@dataclass(slots=True)
class ReferenceFigures:
    """The same two operations without pymon, on this machine, just before the run.

    A bare aiohttp GET on a fresh connection and a bare socket connect + close, in
    a plain loop against the same targets: what the machine charges for the I/O
    alone. ``mix_us`` is their mean (the bench's half-and-half mix), ``per_core``
    how many such operations one core could do, and ``pymon_ratio`` pymon's event
    loop CPU per check over ``mix_us``: the engine's own cost as a factor. It is
    measured in the seconds before the run, so a change of the machine's speed
    between the two still moves it (docs/performance.md). Zeros when skipped.
    """

    seconds: float
    get_us: float
    connect_us: float
    mix_us: float
    per_core: float
    pymon_ratio: float


@dataclass(slots=True)
class TargetFigures:
    """What the target process answered during the window."""

    http_requests: int
    tcp_accepts: int


@dataclass(slots=True)
class BenchReport:
    """Everything one run measured; :meth:`to_dict` is the JSON form."""

    run: RunFigures
    checks: CheckFigures
    lateness: Percentiles
    loop_lag: Percentiles
    gc: GcFigures
    cpu: CpuFigures
    memory: MemoryFigures
    store: StoreFigures
    target: TargetFigures
    reference: ReferenceFigures
    timeline: list[TimelineSecond] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready nested dict."""
        return asdict(self)


# -- the target process ---------------------------------------------------------------


class _Counters:
    http = 0
    tcp = 0


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


def _cpu_split() -> tuple[float, float]:
    """(user, system) CPU seconds of this process, every thread included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def _cpu_seconds() -> float:
    return sum(_cpu_split())


async def _serve_targets(ports: int) -> None:
    loop = asyncio.get_running_loop()
    servers = []
    for factory in (_HttpTarget, _TcpTarget):
        for _ in range(ports):
            servers.append(await loop.create_server(factory, "127.0.0.1", 0, backlog=BACKLOG))
    http_ports = [s.sockets[0].getsockname()[1] for s in servers[:ports]]
    tcp_ports = [s.sockets[0].getsockname()[1] for s in servers[ports:]]
    print(json.dumps({"http": http_ports, "tcp": tcp_ports}), flush=True)
    # Commands arrive on stdin, one per line; EOF (the parent went away) ends us.
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip() == b"stats":
            stats = {"cpu": _cpu_seconds(), "http": _Counters.http, "tcp": _Counters.tcp}
            print(json.dumps(stats), flush=True)
    for server in servers:
        server.close()


def serve_targets(ports: int) -> None:
    """Run the target servers (entry point of the target process).

    Prints ``{"http": [ports], "tcp": [ports]}`` once listening; then answers each
    ``stats`` line on stdin with ``{"cpu": s, "http": n, "tcp": n}``; exits at EOF.
    The target always runs on the standard asyncio loop, so that comparing pymon
    on asyncio and uvloop changes one side only.
    """
    asyncio.run(_serve_targets(ports))


@dataclass(slots=True)
class _TargetStats:
    cpu: float
    http: int
    tcp: int


class TargetProcess:
    """The parent's handle on the target process (also used by load tests)."""

    def __init__(self, proc: asyncio.subprocess.Process, http: list[int], tcp: list[int]) -> None:
        self.proc = proc
        self.http_ports = http
        self.tcp_ports = tcp

    @classmethod
    async def start(cls, ports: int) -> TargetProcess:
        code = f"from pymon.bench import serve_targets; serve_targets({ports})"
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            code,
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
        return cls(proc, ports_doc["http"], ports_doc["tcp"])

    async def stats(self) -> _TargetStats:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(b"stats\n")
        await self.proc.stdin.drain()
        doc = json.loads(await self.proc.stdout.readline())
        return _TargetStats(float(doc["cpu"]), int(doc["http"]), int(doc["tcp"]))

    async def stop(self) -> None:
        if self.proc.returncode is None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            try:
                async with asyncio.timeout(5):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


# -- measuring the pymon side --------------------------------------------------------


class MeteredStore:
    """A Store proxy that times each batch and keeps the window's results.

    Results are attributed to the window by their ``started_at`` (wall clock), so
    a check that started inside the window counts even if its batch lands after.
    Everything but ``write`` is passed through to the wrapped store unchanged.
    """

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.window: tuple[float, float] = (math.inf, math.inf)
        self.results: list[tuple[Status, float, str]] = []
        self.batches: list[tuple[float, int, float]] = []  # (start, results, seconds)
        # Per second since ``origin`` (the daemon's start): [checks, max lateness].
        self.origin = math.inf
        self.seconds: dict[int, list[float]] = {}

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes not found here: the rest of the Store protocol.
        return getattr(self.inner, name)

    async def write(
        self,
        states: Sequence[ServiceState],
        results: Sequence[ResultRecord],
        *rest: Any,
        **named: Any,
    ) -> None:
        """Write through, timing the batch and keeping results that started in the window.

        Whatever else the Store protocol's ``write`` takes (events, incidents...) is
        passed on untouched, so the protocol can grow without this proxy knowing.
        """
        start = time.time()
        t0 = time.perf_counter()
        await self.inner.write(states, results, *rest, **named)
        self.batches.append((start, len(results), time.perf_counter() - t0))
        lo, hi = self.window
        keep = self.results.append
        origin, seconds = self.origin, self.seconds
        for r in results:
            if lo <= r.started_at < hi:
                keep((r.status, r.lateness, r.message))
            tally = seconds.setdefault(int(r.started_at - origin), [0, 0.0])
            tally[0] += 1
            tally[1] = max(tally[1], r.lateness)


async def _probe_loop_lag(samples: list[float], period: float = LAG_PROBE_PERIOD) -> None:
    """Sleep ``period`` over and over; how much later than asked we wake is the loop's lag."""
    loop = asyncio.get_running_loop()
    while True:
        t0 = loop.time()
        await asyncio.sleep(period)
        samples.append(max(0.0, loop.time() - t0 - period))


def _rss_bytes() -> int:
    """VmRSS of this process from /proc/self/status (0 where there is no /proc)."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    m = re.search(r"^VmRSS:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(m[1]) * 1024 if m else 0


_NUMBERS = re.compile(r"\d+(\.\d+)?")


def _failure_kind(message: str) -> str:
    # Ports, times and addresses differ per service; without them the same failure
    # reads the same, so they can be counted.
    return _NUMBERS.sub("#", message)[:160]


def _machine_busy() -> float:
    """CPU seconds all cores spent not idle since boot, from /proc/stat (0 without it).

    The difference over the window, minus pymon's and the target's own CPU, is what
    other processes took: a benchmark on a busy machine says so in its report.
    """
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


def _loadavg() -> float:
    # Another busy process on the machine skews every figure; the report says so.
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return -1.0


def machine_info() -> dict[str, Any]:
    """CPU model, core count, Python, loop and library versions: to read figures against."""
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import aiohttp
    import sqlalchemy

    return {
        "cpu_model": model,
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "pymon": __version__,
        "aiohttp": aiohttp.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "sqlite": sqlite3.sqlite_version,
    }


def _build_config(options: BenchOptions, target: TargetProcess, db: Path) -> Config:
    from pymon.checks import check_type
    from pymon.checks.http import HttpSpec
    from pymon.checks.tcp import TcpSpec

    # The http type's default thresholds (status code table), as load.py would
    # merge them: the rules then do the work they do in production.
    http_thresholds = dict(check_type("http").thresholds)
    services: list[ServiceConfig] = []
    for i in range(options.services):
        if i % 2 == 0:
            port = target.tcp_ports[(i // 2) % len(target.tcp_ports)]
            services.append(
                ServiceConfig(
                    name=f"tcp-{i:06d}",
                    type="tcp",
                    check=TcpSpec(host="127.0.0.1", port=port),
                    interval=options.interval,
                    timeout=options.effective_timeout,
                )
            )
        else:
            port = target.http_ports[(i // 2) % len(target.http_ports)]
            services.append(
                ServiceConfig(
                    name=f"http-{i:06d}",
                    type="http",
                    check=HttpSpec(url=f"http://127.0.0.1:{port}/health/{i}"),
                    interval=options.interval,
                    timeout=options.effective_timeout,
                    thresholds=http_thresholds,
                )
            )
    storage: dict[str, Any] = {"url": f"sqlite:///{db}"}
    if options.flush_interval is not None:
        storage["flush_interval"] = options.flush_interval
    scheduler = (
        SchedulerConfig()
        if options.concurrency is None
        else SchedulerConfig(concurrency=options.concurrency)
    )
    return Config(
        services=tuple(services),
        storage=StorageConfig(**storage),
        web=WebConfig(enabled=False),
        scheduler=scheduler,
    )


Progress = Callable[[str], None]


async def run_bench(options: BenchOptions, progress: Progress | None = None) -> BenchReport:
    """Run one benchmark point in the running loop and return what it measured."""
    options.validate()
    say = progress or (lambda _msg: None)
    tmp = None
    if options.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="pymon-bench-")
    workdir = options.workdir or Path(tmp.name if tmp is not None else ".")
    try:
        target = await TargetProcess.start(options.effective_ports)
        try:
            # As `pymon run` does: the benchmark measures the daemon as it runs.
            with relaxed_gc():
                reference = (0.0, 0.0)
                if options.reference > 0:
                    say(f"reference: bare GETs and connects for {options.reference:g}s")
                    reference = await measure_reference(target, options.reference)
                return await _measure(options, target, workdir, say, reference)
        finally:
            await target.stop()
    finally:
        if tmp is not None:
            tmp.cleanup()


async def measure_reference(
    target: TargetProcess, seconds: float, concurrency: int = REFERENCE_CONCURRENCY
) -> tuple[float, float]:
    """CPU seconds of one bare aiohttp GET and of one bare connect, measured alternately.

    The connect is the cheapest pymon knows, a C socket connected by hand
    (``checks.tcp.connect_and_close``, what a connect-only tcp check does).

    Half of ``seconds`` each, in rounds of a quarter second so that a change in the
    machine's speed falls on both; ``concurrency`` operations in flight at a time.
    """
    import aiohttp

    from pymon.checks.tcp import connect_and_close

    urls = [f"http://127.0.0.1:{port}/ref" for port in target.http_ports]
    tcp = target.tcp_ports

    async def get(session: aiohttp.ClientSession, i: int) -> None:
        async with session.get(urls[i % len(urls)]) as resp:
            await resp.read()

    async def connect(i: int) -> None:
        await connect_and_close("127.0.0.1", tcp[i % len(tcp)])

    get_cpu = connect_cpu = 0.0
    gets = connects = 0
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            cpu, done = await _reference_round(functools.partial(get, session), concurrency)
            get_cpu, gets = get_cpu + cpu, gets + done
            cpu, done = await _reference_round(connect, concurrency)
            connect_cpu, connects = connect_cpu + cpu, connects + done
    return get_cpu / max(1, gets), connect_cpu / max(1, connects)


async def _reference_round(
    op: Callable[[int], Awaitable[None]], concurrency: int
) -> tuple[float, int]:
    """Run ``op`` for REFERENCE_ROUND seconds, ``concurrency`` at a time: (loop CPU, ops)."""
    stop = time.monotonic() + REFERENCE_ROUND
    done = 0

    async def worker(first: int) -> None:
        nonlocal done
        i = first
        while time.monotonic() < stop:
            await op(i)
            done += 1
            i += concurrency

    cpu0 = time.thread_time()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return time.thread_time() - cpu0, done


async def _measure(
    options: BenchOptions,
    target: TargetProcess,
    workdir: Path,
    say: Progress,
    reference: tuple[float, float],
) -> BenchReport:
    # Imported here, before the "before" RSS is read, so that module code is not
    # counted as memory per service (and the target process never loads them).
    from pymon.engine.daemon import Daemon
    from pymon.store.sql import SqlStore

    gc.collect()
    rss_before = _rss_bytes()
    config = _build_config(options, target, workdir / "bench.db")
    store = MeteredStore(SqlStore(config.storage.url, history=config.storage.history))
    daemon = Daemon(config, store=cast(Store, store))
    lag: list[float] = []
    lag_task: asyncio.Task[None] | None = None
    gc_meter = _GcMeter()
    say(
        f"{options.services} services ({(options.services + 1) // 2} tcp, "
        f"{options.services // 2} http) every {options.interval:g}s; "
        f"warm-up {options.effective_warmup:g}s, then measuring {options.duration:g}s"
    )
    store.origin = time.time()
    await daemon.start()
    try:
        await asyncio.sleep(options.effective_warmup)
        rss_running = _rss_bytes()

        # The window opens: snapshot every counter.
        t_start = time.time()
        store.window = (t_start, math.inf)
        batches_before = len(store.batches)
        failures_before = daemon.writer.failures
        skipped_before = daemon.scheduler.stats.skipped
        cpu_before = _cpu_split()
        # The event loop's own thread: the one that saturates first (the rest of
        # the process is SQLite's thread, the resolver's and the kernel on their behalf).
        loop_before = time.thread_time()
        load_before = _loadavg()
        busy_before = _machine_busy()
        target_before = await target.stats()
        lag_task = asyncio.create_task(_probe_loop_lag(lag))
        gc.callbacks.append(gc_meter)
        say("measuring...")

        await asyncio.sleep(options.duration)

        t_end = time.time()
        cpu_after = _cpu_split()
        loop_cpu = time.thread_time() - loop_before
        busy = _machine_busy() - busy_before
        target_after = await target.stats()
        skipped = daemon.scheduler.stats.skipped - skipped_before
        store.window = (t_start, t_end)
        lag_task.cancel()
        gc.callbacks.remove(gc_meter)
        # Let checks that started in the window finish and be written.
        await asyncio.sleep(END_GRACE)
    finally:
        if lag_task is not None:
            lag_task.cancel()
        if gc_meter in gc.callbacks:
            gc.callbacks.remove(gc_meter)
        await daemon.stop()
    window = t_end - t_start
    batches = [b for b in store.batches[batches_before:] if b[0] < t_end]
    return _report(
        options,
        config,
        store,
        batches,
        window=window,
        skipped=skipped,
        writer_failures=daemon.writer.failures - failures_before,
        cpu=(cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1]),
        loop_cpu=loop_cpu,
        load=(load_before, _loadavg()),
        busy=busy,
        target_cpu=target_after.cpu - target_before.cpu,
        target=TargetFigures(
            target_after.http - target_before.http, target_after.tcp - target_before.tcp
        ),
        rss=(rss_before, rss_running),
        lag=lag,
        gc_figures=gc_meter.figures(window),
        reference=(options.reference, *reference),
    )


def _report(
    options: BenchOptions,
    config: Config,
    store: MeteredStore,
    batches: list[tuple[float, int, float]],
    *,
    window: float,
    skipped: int,
    writer_failures: int,
    cpu: tuple[float, float],
    loop_cpu: float,
    load: tuple[float, float],
    busy: float,
    target_cpu: float,
    target: TargetFigures,
    rss: tuple[int, int],
    lag: list[float],
    gc_figures: GcFigures,
    reference: tuple[float, float, float],
) -> BenchReport:
    results = store.results
    total = len(results)
    by_status = Counter(status.value for status, _, _ in results)
    failures = Counter(_failure_kind(msg) for status, _, msg in results if status is not Status.OK)
    per_1000 = 1000 / total if total else 0.0
    written = sum(n for _, n, _ in batches)
    return BenchReport(
        run=RunFigures(
            services=options.services,
            tcp=(options.services + 1) // 2,
            http=options.services // 2,
            interval_s=options.interval,
            warmup_s=options.effective_warmup,
            window_s=round(window, 3),
            concurrency=config.scheduler.concurrency,
            timeout_s=options.effective_timeout,
            flush_interval_s=config.storage.flush_interval,
            loop=options.loop,
            ports_per_kind=options.effective_ports,
        ),
        checks=CheckFigures(
            total=total,
            per_second=round(total / window, 1),
            expected_per_second=round(options.services / options.interval, 1),
            ok=by_status.get(Status.OK.value, 0),
            failed=total - by_status.get(Status.OK.value, 0),
            by_status=dict(by_status),
            failure_samples=dict(failures.most_common(5)),
            skipped_runs=skipped,
        ),
        lateness=Percentiles.of([lateness for _, lateness, _ in results]),
        loop_lag=Percentiles.of(lag),
        gc=gc_figures,
        cpu=CpuFigures(
            pymon_s=round(sum(cpu), 3),
            pymon_user_s=round(cpu[0], 3),
            pymon_system_s=round(cpu[1], 3),
            pymon_per_1000_checks_s=round(sum(cpu) * per_1000, 4),
            pymon_utilization=round(sum(cpu) / window, 3),
            loop_thread_s=round(loop_cpu, 3),
            loop_thread_per_1000_checks_s=round(loop_cpu * per_1000, 4),
            loop_thread_utilization=round(loop_cpu / window, 3),
            target_s=round(target_cpu, 3),
            target_per_1000_checks_s=round(target_cpu * per_1000, 4),
            target_utilization=round(target_cpu / window, 3),
            machine_busy_cores=round(busy / window, 3),
            others_cores=round(max(0.0, busy - sum(cpu) - target_cpu) / window, 3),
        ),
        memory=MemoryFigures(
            rss_before_mb=round(rss[0] / 2**20, 1),
            rss_running_mb=round(rss[1] / 2**20, 1),
            per_service_kb=round((rss[1] - rss[0]) / options.services / 1024, 2),
        ),
        store=StoreFigures(
            batches=len(batches),
            results_written=written,
            mean_batch=round(written / len(batches), 1) if batches else 0.0,
            write_ms=Percentiles.of([seconds for _, _, seconds in batches]),
            write_busy=round(sum(s for _, _, s in batches) / window, 3),
            writer_failures=writer_failures,
        ),
        target=target,
        reference=_reference_figures(reference, loop_cpu * per_1000 / 1000),
        timeline=_timeline(store),
        machine=machine_info() | {"loadavg_1m_before": load[0], "loadavg_1m_after": load[1]},
    )


def _timeline(store: MeteredStore) -> list[TimelineSecond]:
    """Per second since the daemon's start: checks, latest check, store batches."""
    writes: dict[int, list[float]] = {}
    for start, _, seconds in store.batches:
        writes.setdefault(int(start - store.origin), []).append(seconds)
    lo, hi = store.window
    timeline = []
    for second in sorted(store.seconds.keys() | writes.keys()):
        checks, latest = store.seconds.get(second, (0, 0.0))
        durations = writes.get(second, [])
        timeline.append(
            TimelineSecond(
                second=second,
                checks=int(checks),
                max_lateness_ms=round(latest * 1000, 1),
                batches=len(durations),
                longest_write_ms=round(max(durations, default=0.0) * 1000, 1),
                in_window=lo <= store.origin + second < hi,
            )
        )
    return timeline


def _reference_figures(
    reference: tuple[float, float, float], loop_per_check: float
) -> ReferenceFigures:
    seconds, get, connect = reference
    mix = (get + connect) / 2
    return ReferenceFigures(
        seconds=seconds,
        get_us=round(get * 1e6, 1),
        connect_us=round(connect * 1e6, 1),
        mix_us=round(mix * 1e6, 1),
        per_core=round(1 / mix) if mix else 0,
        pymon_ratio=round(loop_per_check / mix, 2) if mix else 0.0,
    )


def run(options: BenchOptions, progress: Progress | None = None) -> BenchReport:
    """Run one benchmark point in a fresh event loop (asyncio's or uvloop's)."""
    options.validate()
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if options.loop == "uvloop":
        try:
            uvloop = importlib.import_module("uvloop")
        except ImportError as exc:
            raise RuntimeError("--loop uvloop needs uvloop installed (pip install uvloop)") from exc
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(run_bench(options, progress))


def render_timeline(report: BenchReport) -> Any:
    """A rich Table of the report's timeline, one row per second of the run."""
    from rich.table import Table

    table = Table(title="per second since the daemon started (* = in the window)")
    for name in ("second", "checks", "latest start", "batches", "longest write"):
        table.add_column(name, justify="right")
    for t in report.timeline:
        table.add_row(
            f"{t.second}{'*' if t.in_window else ''}",
            f"{t.checks:,}",
            f"{t.max_lateness_ms:,.0f} ms",
            f"{t.batches}",
            f"{t.longest_write_ms:,.0f} ms" if t.batches else "",
        )
    return table


def render_report(report: BenchReport) -> Any:
    """A rich Table of the report's headline figures."""
    from rich.table import Table

    r, c = report.run, report.checks
    table = Table(
        title=(
            f"pymon bench: {r.services} services ({r.tcp} tcp, {r.http} http) every "
            f"{r.interval_s:g}s, {r.window_s:g}s window, loop={r.loop}"
        ),
        show_header=True,
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("note")
    rows: list[tuple[str, str, str]] = [
        ("checks/s", f"{c.per_second:,.1f}", f"expected {c.expected_per_second:,.1f}"),
        ("checks in window", f"{c.total:,}", f"ok {c.ok:,}, not ok {c.failed:,}"),
        ("skipped runs", f"{c.skipped_runs:,}", "due time passed before the previous run ended"),
        (
            "lateness p50 / p99",
            f"{report.lateness.p50_ms:.1f} / {report.lateness.p99_ms:.1f} ms",
            f"max {report.lateness.max_ms:.1f} ms",
        ),
        (
            "loop lag p50 / p99",
            f"{report.loop_lag.p50_ms:.1f} / {report.loop_lag.p99_ms:.1f} ms",
            f"max {report.loop_lag.max_ms:.1f} ms",
        ),
        (
            "garbage collector",
            f"{report.gc.pause_share:.1%} of the time",
            f"{sum(report.gc.collections.values()):,} collections, "
            f"longest {report.gc.max_pause_ms:.1f} ms",
        ),
        (
            "pymon CPU / 1,000 checks",
            f"{report.cpu.pymon_per_1000_checks_s:.3f} s",
            f"{report.cpu.pymon_utilization:.0%} of one core",
        ),
        (
            "event loop thread CPU",
            f"{report.cpu.loop_thread_per_1000_checks_s:.3f} s / 1,000",
            f"{report.cpu.loop_thread_utilization:.0%} of one core (saturates first)",
        ),
        (
            "target CPU / 1,000 checks",
            f"{report.cpu.target_per_1000_checks_s:.3f} s",
            f"{report.cpu.target_utilization:.0%} of one core",
        ),
        (
            "machine busy",
            f"{report.cpu.machine_busy_cores:.2f} cores",
            f"of which other processes {report.cpu.others_cores:.2f}",
        ),
        (
            "memory / service",
            f"{report.memory.per_service_kb:.1f} KiB",
            f"RSS {report.memory.rss_before_mb:.0f} -> {report.memory.rss_running_mb:.0f} MiB",
        ),
        (
            "store batches",
            f"{report.store.batches:,}",
            f"mean {report.store.mean_batch:,.0f} results, "
            f"write p50 {report.store.write_ms.p50_ms:.0f} / p99 "
            f"{report.store.write_ms.p99_ms:.0f} ms, busy {report.store.write_busy:.0%}",
        ),
        (
            "reference (no pymon)",
            f"{report.reference.pymon_ratio:.2f}x",
            f"loop CPU per check over a bare GET {report.reference.get_us:.0f} µs / "
            f"connect {report.reference.connect_us:.0f} µs "
            f"(mix: {report.reference.per_core:,} per core)",
        ),
        (
            "target answered",
            f"{report.target.http_requests + report.target.tcp_accepts:,}",
            f"http {report.target.http_requests:,}, tcp {report.target.tcp_accepts:,}",
        ),
    ]
    for row in rows:
        table.add_row(*row)
    for message, count in c.failure_samples.items():
        table.add_row("failure", f"{count:,}", message)
    return table
