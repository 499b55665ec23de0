"""One benchmark point: start the targets, build the daemon, warm up, measure a window.

:func:`run` runs a point in a fresh event loop (asyncio's or uvloop's) and is what
``pymon bench`` calls; :func:`run_bench` runs one in the running loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import math
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness.engine import BenchDaemon
from benchmarks.harness.meters import (
    GcMeter,
    MeteredStore,
    children_cpu,
    db_thread_cpu,
    loadavg,
    machine_busy,
    probe_loop_lag,
    rss_bytes,
)
from benchmarks.harness.options import BenchOptions, LoopName
from benchmarks.harness.peers.lineup import compare, shared_target
from benchmarks.harness.peers.nginx import NginxTarget
from benchmarks.harness.preflight import Unavailable, icmp_unavailable
from benchmarks.harness.reference import measure_reference
from benchmarks.harness.report import BenchReport, TargetFigures, WindowSamples, build_report
from benchmarks.harness.targets import Target, TargetProcess, cpu_split
from benchmarks.harness.workers import measure_workers
from benchmarks.harness.workload import Endpoints, build_config, plugin_command
from pymon.config.schema import Config
from pymon.store.sql import SqlStore
from pymon.tuning import freeze_heap, relaxed_gc

__all__ = [
    "Measured",
    "Progress",
    "endpoints_of",
    "loop_factory",
    "measure",
    "preflight",
    "run",
    "run_bench",
]

# After the window closes, checks that started inside it still have to finish and
# be written; this is how long they get before the daemon is stopped.
END_GRACE = 1.0

Progress = Callable[[str], None]


def run(options: BenchOptions, progress: Progress | None = None) -> BenchReport:
    """Run one benchmark point in a fresh event loop (asyncio's or uvloop's).

    Raises :class:`Unavailable` (before any loop starts) when the machine cannot run it.
    """
    options.validate()
    preflight(options)
    with asyncio.Runner(loop_factory=loop_factory(options.loop)) as runner:
        return runner.run(run_bench(options, progress))


def loop_factory(loop: LoopName) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop factory of ``loop`` (None: asyncio's own)."""
    if loop != "uvloop":
        return None
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError as exc:
        raise RuntimeError("--loop uvloop needs uvloop installed (pip install uvloop)") from exc
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def preflight(options: BenchOptions) -> None:
    """Raise :class:`Unavailable` with the reason when this machine cannot run the point."""
    if options.kind == "ping" and (reason := icmp_unavailable()) is not None:
        raise Unavailable(f"--type ping skipped: {reason}")
    if options.nginx and not options.web_kind:
        raise Unavailable(f"--nginx serves http and tcp checks, not {options.kind}")
    if options.nginx and NginxTarget.program() is None:
        raise Unavailable("--nginx: nginx is not installed (Debian: nginx-light)")


def endpoints_of(target: Target, workdir: Path) -> Endpoints:
    """Where a point's services go: ``target``'s ports, and the plugin to run."""
    return Endpoints(target.tcp_ports, target.http_ports, target.dns_port, plugin_command(workdir))


async def run_bench(options: BenchOptions, progress: Progress | None = None) -> BenchReport:
    """Run one benchmark point in the running loop and return what it measured.

    Raises :class:`Unavailable` (before starting anything) when the machine cannot run it.
    """
    options.validate()
    preflight(options)
    say = progress or (lambda _msg: None)
    tmp = None
    if options.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="pymon-bench-")
    workdir = options.workdir or Path(tmp.name if tmp is not None else ".")
    try:
        process = await TargetProcess.start(options.effective_ports)
        try:
            async with contextlib.AsyncExitStack() as stack:
                target: Target = process
                served_by = process.description
                if options.peers or options.nginx:
                    target, served_by = await stack.enter_async_context(
                        shared_target(options, process, workdir)
                    )
                endpoints = endpoints_of(target, workdir)
                report = await _point(options, target, endpoints, workdir, say)
                report.target.server = served_by
                if options.peers:
                    report.peers = await compare(
                        options, endpoints, workdir, say, report, served_by
                    )
                return report
        finally:
            await process.stop()
    finally:
        if tmp is not None:
            tmp.cleanup()


async def _point(
    options: BenchOptions, target: Target, endpoints: Endpoints, workdir: Path, say: Progress
) -> BenchReport:
    """pymon's point: the reference phase, then one process or several workers."""
    # As `pymon run` does: the benchmark measures the daemon as it runs.
    with relaxed_gc():
        reference = (0.0, 0.0)
        if options.effective_reference > 0:
            say(f"reference: bare GETs and connects for {options.reference:g}s")
            reference = await measure_reference(target, options.reference)
        if options.workers > 1:
            return await measure_workers(options, target, endpoints, workdir, say, reference)
        return await _measure(options, target, endpoints, workdir, say, reference)


async def _measure(
    options: BenchOptions,
    target: Target,
    endpoints: Endpoints,
    workdir: Path,
    say: Progress,
    reference: tuple[float, float],
) -> BenchReport:
    async def after_warmup(_daemon: BenchDaemon) -> float:
        await asyncio.sleep(options.effective_warmup)
        return time.time()

    def config() -> Config:
        return build_config(options, endpoints, workdir / "bench.db")

    say(
        f"{options.services} services ({options.describe()}) every {options.interval:g}s; "
        f"warm-up {options.effective_warmup:g}s, then measuring {options.duration:g}s"
    )
    measured = await measure(options.duration, config, after_warmup, say, target=target)
    measured.samples.reference = (options.effective_reference, *reference)
    m = measured
    return build_report(options, m.config, m.store, m.batches, m.samples)


@dataclass(slots=True)
class Measured:
    """What :func:`measure` took: the store's meter, the window's batches, the samples."""

    config: Config
    store: MeteredStore
    batches: list[tuple[float, int, float]]
    samples: WindowSamples
    shards: int  # held by this node when the window opened


async def measure(
    duration: float,
    config_of: Callable[[], Config],
    opens: Callable[[BenchDaemon], Awaitable[float]],
    say: Progress,
    *,
    target: Target | None = None,
    node: str | None = None,
    worker: int | None = None,
    settle: Callable[[BenchDaemon], Awaitable[None]] | None = None,
    grace: float = END_GRACE,
) -> Measured:
    """Build and start a daemon on ``config_of()``, await ``opens(daemon)`` (the warm-up:
    it returns the window's wall-clock start), measure ``duration`` seconds from there
    and stop it ``grace`` seconds after the window closed. ``settle(daemon)``, when
    given, is awaited before the window closes: it holds the window open past
    ``duration`` (until the checks it started are done). Without ``target`` (a worker
    of several) its figures stay zero: the process that owns the target reads them."""
    # Every module the daemon needs is imported by now (at the top of this package's
    # modules), so that module code is not counted as memory per service.
    gc.collect()
    rss_before = rss_bytes()
    config = config_of()
    store = MeteredStore(SqlStore(config.storage.url, history=config.storage.history))
    daemon = BenchDaemon(config, store, node=node, worker=worker)
    lag: list[float] = []
    lag_task: asyncio.Task[None] | None = None
    gc_meter = GcMeter()
    store.origin = time.time()
    await daemon.start()
    freeze_heap(len(config.services))  # as pymon run does once started
    try:
        t_start = await opens(daemon)
        rss_running = rss_bytes()
        shards = daemon.shards

        # The window opens: snapshot every counter.
        store.window = (t_start, math.inf)
        batches_before = len(store.batches)
        failures_before = daemon.writer_failures
        skipped_before = daemon.skipped_runs
        cpu_before = cpu_split()
        children_before = children_cpu()
        # The event loop's own thread: the one that saturates first (the rest of
        # the process is SQLite's thread, the resolver's and the kernel on their behalf).
        loop_before = time.thread_time()
        db_before = db_thread_cpu()
        load_before = loadavg()
        busy_before = machine_busy()
        target_before = await target.stats() if target is not None else None
        lag_task = asyncio.create_task(probe_loop_lag(lag))
        gc.callbacks.append(gc_meter)
        say("measuring...")

        await asyncio.sleep(max(0.0, t_start + duration - time.time()))
        if settle is not None:
            await settle(daemon)

        t_end = time.time()
        cpu_after = cpu_split()
        children = children_cpu() - children_before
        loop_cpu = time.thread_time() - loop_before
        db_after = db_thread_cpu()
        busy = machine_busy() - busy_before
        target_after = await target.stats() if target is not None else None
        skipped = daemon.skipped_runs - skipped_before
        store.window = (t_start, t_end)
        lag_task.cancel()
        gc.callbacks.remove(gc_meter)
        # Let checks that started in the window finish and be written.
        await asyncio.sleep(grace)
    finally:
        if lag_task is not None:
            lag_task.cancel()
        if gc_meter in gc.callbacks:
            gc.callbacks.remove(gc_meter)
        await daemon.stop()
    batches = [b for b in store.batches[batches_before:] if b[0] < t_end]
    target_cpu, answered = 0.0, TargetFigures(0, 0)
    if target_before is not None and target_after is not None:
        target_cpu = target_after.cpu - target_before.cpu
        answered = TargetFigures.between(target_before, target_after)
    samples = WindowSamples(
        window=t_end - t_start,
        skipped=skipped,
        writer_failures=daemon.writer_failures - failures_before,
        cpu=(cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1]),
        loop_cpu=loop_cpu,
        load=(load_before, loadavg()),
        busy=busy,
        target_cpu=target_cpu,
        target=answered,
        rss=(rss_before, rss_running),
        lag=lag,
        gc_pauses=gc_meter.pauses,
        reference=(0.0, 0.0, 0.0),
        db_cpu=sum(db_after[t] - db_before.get(t, 0.0) for t in db_after),
        children_cpu=children,
    )
    return Measured(config, store, batches, samples, shards)
