"""One benchmark point: start the targets, build the daemon, warm up, measure a window.

:func:`run` runs a point in a fresh event loop (asyncio's or uvloop's) and is what
``pymon bench`` calls; :func:`run_bench` runs one in the running loop.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.harness.engine import BenchDaemon
from benchmarks.harness.meters import (
    GcMeter,
    MeteredStore,
    loadavg,
    machine_busy,
    probe_loop_lag,
    rss_bytes,
)
from benchmarks.harness.options import BenchOptions
from benchmarks.harness.reference import measure_reference
from benchmarks.harness.report import BenchReport, TargetFigures, WindowSamples, build_report
from benchmarks.harness.targets import TargetProcess, cpu_split
from pymon.checks import check_type
from pymon.checks.http import HttpSpec
from pymon.checks.tcp import TcpSpec
from pymon.config.schema import (
    Config,
    SchedulerConfig,
    ServiceConfig,
    StorageConfig,
    WebConfig,
)
from pymon.store.sql import SqlStore
from pymon.tuning import relaxed_gc

__all__ = ["Progress", "run", "run_bench"]

# After the window closes, checks that started inside it still have to finish and
# be written; this is how long they get before the daemon is stopped.
END_GRACE = 1.0

Progress = Callable[[str], None]


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


def _build_config(options: BenchOptions, target: TargetProcess, db: Path) -> Config:
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


async def _measure(
    options: BenchOptions,
    target: TargetProcess,
    workdir: Path,
    say: Progress,
    reference: tuple[float, float],
) -> BenchReport:
    # Every module the daemon needs is imported by now (at the top of this package's
    # modules), so that module code is not counted as memory per service.
    gc.collect()
    rss_before = rss_bytes()
    config = _build_config(options, target, workdir / "bench.db")
    store = MeteredStore(SqlStore(config.storage.url, history=config.storage.history))
    daemon = BenchDaemon(config, store)
    lag: list[float] = []
    lag_task: asyncio.Task[None] | None = None
    gc_meter = GcMeter()
    say(
        f"{options.services} services ({(options.services + 1) // 2} tcp, "
        f"{options.services // 2} http) every {options.interval:g}s; "
        f"warm-up {options.effective_warmup:g}s, then measuring {options.duration:g}s"
    )
    store.origin = time.time()
    await daemon.start()
    try:
        await asyncio.sleep(options.effective_warmup)
        rss_running = rss_bytes()

        # The window opens: snapshot every counter.
        t_start = time.time()
        store.window = (t_start, math.inf)
        batches_before = len(store.batches)
        failures_before = daemon.writer_failures
        skipped_before = daemon.skipped_runs
        cpu_before = cpu_split()
        # The event loop's own thread: the one that saturates first (the rest of
        # the process is SQLite's thread, the resolver's and the kernel on their behalf).
        loop_before = time.thread_time()
        load_before = loadavg()
        busy_before = machine_busy()
        target_before = await target.stats()
        lag_task = asyncio.create_task(probe_loop_lag(lag))
        gc.callbacks.append(gc_meter)
        say("measuring...")

        await asyncio.sleep(options.duration)

        t_end = time.time()
        cpu_after = cpu_split()
        loop_cpu = time.thread_time() - loop_before
        busy = machine_busy() - busy_before
        target_after = await target.stats()
        skipped = daemon.skipped_runs - skipped_before
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
    batches = [b for b in store.batches[batches_before:] if b[0] < t_end]
    samples = WindowSamples(
        window=t_end - t_start,
        skipped=skipped,
        writer_failures=daemon.writer_failures - failures_before,
        cpu=(cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1]),
        loop_cpu=loop_cpu,
        load=(load_before, loadavg()),
        busy=busy,
        target_cpu=target_after.cpu - target_before.cpu,
        target=TargetFigures(
            target_after.http - target_before.http, target_after.tcp - target_before.tcp
        ),
        rss=(rss_before, rss_running),
        lag=lag,
        gc_pauses=gc_meter.pauses,
        reference=(options.reference, *reference),
    )
    return build_report(options, config, store, batches, samples)
