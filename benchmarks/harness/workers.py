"""A point of several workers (``--workers N``): N daemons, one cluster, one target.

The parent (this module, in the process that owns the target) starts N worker
processes (``worker.py``), each a node ``bench-wI`` of one cluster on the same
SQLite file (WAL), so that each takes about 1/N of the shards, as ``pymon run
--workers N`` would. Once every worker's daemon runs, the parent gives them all
the same wall-clock start of the window, a warm-up away (which also covers the
shards' rebalancing: the first node up holds all of them until the others beat).
Each worker measures the window as a single-process run does and sends its raw
samples back; the parent reads the target's and the machine's figures over the
same window and builds one report from the merged samples (lateness percentiles
over every worker's checks, not a max of percentiles), with each worker's own
figures beside it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.harness.meters import loadavg, machine_busy
from benchmarks.harness.options import BenchOptions
from benchmarks.harness.report import (
    BenchReport,
    Percentiles,
    TargetFigures,
    WindowSamples,
    WorkerFigures,
    build_report,
)
from benchmarks.harness.targets import Target
from benchmarks.harness.workload import Endpoints, build_config
from pymon.config.schema import ClusterConfig
from pymon.model import Status

__all__ = ["BENCH_CLUSTER", "MergedTally", "WorkerDump", "WorkerSpec", "measure_workers"]

# Faster than the defaults (2 s, 10 s), so that the shards settle well inside a
# warm-up of two intervals.
BENCH_CLUSTER = ClusterConfig(heartbeat=1.0, lease=5.0, shards=256)

# How long a worker may take to build its config and start its daemon (20,000
# services on a busy machine take a few seconds), and to stop after its window.
START_TIMEOUT = 300.0
STOP_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What the parent tells a worker (the SPEC file)."""

    options: dict[str, Any]  # BenchOptions' fields but workdir
    tcp_ports: list[int]
    http_ports: list[int]
    dns_port: int
    plugin: list[str]
    db: str
    cluster: dict[str, Any]  # ClusterConfig's fields
    node: str
    worker: int
    out: str

    def bench_options(self) -> BenchOptions:
        """The point's options, as the parent has them."""
        return BenchOptions(**self.options)

    def endpoints(self) -> Endpoints:
        """Where the services go, as the parent has it."""
        return Endpoints(self.tcp_ports, self.http_ports, self.dns_port, self.plugin)


@dataclass(frozen=True, slots=True)
class WorkerDump:
    """What a worker measured, raw, so that the parent merges samples, not percentiles.

    ``results``, ``all_batches``, ``seconds`` and ``origin`` are its MeteredStore's
    (results as ``[status, lateness, message, duration]``, seconds keyed by their string),
    ``batches`` those of the window, ``samples`` its WindowSamples as a dict.
    """

    node: str
    shards: int
    origin: float
    results: list[list[Any]]
    all_batches: list[list[float]]
    batches: list[list[float]]
    seconds: dict[str, list[float]]
    samples: dict[str, Any]


@dataclass(slots=True)
class MergedTally:
    """The workers' store meters as one (report.Tally), seconds counted from ``origin``."""

    results: list[tuple[Status, float, str, float]]
    batches: list[tuple[float, int, float]]
    origin: float
    seconds: dict[int, list[float]]
    window: tuple[float, float]

    @classmethod
    def of(cls, dumps: list[WorkerDump], origin: float, window: tuple[float, float]) -> MergedTally:
        """Every worker's results and batches; their seconds rebased on ``origin``."""
        seconds: dict[int, list[float]] = {}
        for dump in dumps:
            shift = round(dump.origin - origin)
            for key, (checks, latest) in dump.seconds.items():
                tally = seconds.setdefault(int(key) + shift, [0, 0.0])
                tally[0] += checks
                tally[1] = max(tally[1], latest)
        return cls(
            results=[(Status(r[0]), r[1], r[2], r[3]) for d in dumps for r in d.results],
            batches=sorted((b[0], int(b[1]), b[2]) for d in dumps for b in d.all_batches),
            origin=origin,
            seconds=seconds,
            window=window,
        )


def _read_dump(path: Path) -> WorkerDump:
    return WorkerDump(**json.loads(path.read_text()))


def _window_batches(dumps: list[WorkerDump]) -> list[tuple[float, int, float]]:
    return sorted((b[0], int(b[1]), b[2]) for d in dumps for b in d.batches)


def _worker_figures(dump: WorkerDump, window: float) -> WorkerFigures:
    s = dump.samples
    lateness = Percentiles.of([r[1] for r in dump.results])
    ok = sum(1 for r in dump.results if r[0] == Status.OK.value)
    return WorkerFigures(
        node=dump.node,
        shards=dump.shards,
        checks=len(dump.results),
        per_second=round(len(dump.results) / window, 1),
        lateness_p50_ms=lateness.p50_ms,
        lateness_p99_ms=lateness.p99_ms,
        failed=len(dump.results) - ok,
        skipped_runs=s["skipped"],
        pymon_cpu_s=round(sum(s["cpu"]), 3),
        loop_thread_utilization=round(s["loop_cpu"] / window, 3),
        db_thread_s=round(s["db_cpu"], 3),
        batches=len(dump.batches),
        results_written=sum(int(b[1]) for b in dump.batches),
    )


def _environment() -> dict[str, str]:
    """The parent's environment, with this checkout and the pymon it imported first
    on the path: the workers run the same code as the parent."""
    import pymon

    paths = [str(Path(__file__).resolve().parents[2]), str(Path(pymon.__file__).parents[1])]
    if existing := os.environ.get("PYTHONPATH"):
        paths.append(existing)
    return os.environ | {"PYTHONPATH": os.pathsep.join(paths)}


async def _start_worker(spec: WorkerSpec, path: Path) -> asyncio.subprocess.Process:
    await asyncio.to_thread(path.write_text, json.dumps(asdict(spec)))
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.harness.worker",
        str(path),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=_environment(),
    )


async def _ready(proc: asyncio.subprocess.Process, node: str) -> None:
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    if line.strip() != b"ready":
        code = await proc.wait()
        raise RuntimeError(f"bench worker {node} exited with status {code} before its window")


async def measure_workers(
    options: BenchOptions,
    target: Target,
    endpoints: Endpoints,
    workdir: Path,
    say: Callable[[str], None],
    reference: tuple[float, float],
) -> BenchReport:
    """Run the point as ``options.workers`` worker processes; one report of them all."""
    n = options.workers
    fields = {k: v for k, v in asdict(options).items() if k != "workdir"}
    db = workdir / "bench.db"
    specs = [
        WorkerSpec(
            options=fields,
            tcp_ports=list(endpoints.tcp_ports),
            http_ports=list(endpoints.http_ports),
            dns_port=endpoints.dns_port,
            plugin=list(endpoints.plugin),
            db=str(db),
            cluster=BENCH_CLUSTER.model_dump(),
            node=f"bench-w{i}",
            worker=i,
            out=str(workdir / f"worker-{i}.json"),
        )
        for i in range(1, n + 1)
    ]
    say(
        f"{options.services} services ({options.describe()}) every {options.interval:g}s "
        f"on {n} workers; "
        f"warm-up {options.effective_warmup:g}s, then measuring {options.duration:g}s"
    )
    origin = time.time()
    procs = [await _start_worker(spec, workdir / f"worker-{spec.worker}.spec") for spec in specs]
    try:
        async with asyncio.timeout(START_TIMEOUT):
            await asyncio.gather(*(_ready(p, s.node) for p, s in zip(procs, specs, strict=True)))
        t_start = time.time() + options.effective_warmup
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(f"{t_start!r}\n".encode())
            await proc.stdin.drain()
        await asyncio.sleep(max(0.0, t_start - time.time()))
        load_before, busy_before = loadavg(), machine_busy()
        target_before = await target.stats()
        say("measuring...")
        await asyncio.sleep(max(0.0, t_start + options.duration - time.time()))
        t_end = time.time()
        busy = machine_busy() - busy_before
        target_after = await target.stats()
        load_after = loadavg()
        async with asyncio.timeout(STOP_TIMEOUT):
            codes = await asyncio.gather(*(p.wait() for p in procs))
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    if any(codes):
        raise RuntimeError(f"bench workers exited with status {codes}")
    dumps = [await asyncio.to_thread(_read_dump, Path(spec.out)) for spec in specs]
    window = t_end - t_start
    parts = [d.samples for d in dumps]
    samples = WindowSamples(
        window=window,
        skipped=sum(p["skipped"] for p in parts),
        writer_failures=sum(p["writer_failures"] for p in parts),
        cpu=(sum(p["cpu"][0] for p in parts), sum(p["cpu"][1] for p in parts)),
        loop_cpu=sum(p["loop_cpu"] for p in parts),
        load=(load_before, load_after),
        busy=busy,
        target_cpu=target_after.cpu - target_before.cpu,
        target=TargetFigures.between(target_before, target_after),
        rss=(sum(p["rss"][0] for p in parts), sum(p["rss"][1] for p in parts)),
        lag=[lag for p in parts for lag in p["lag"]],
        gc_pauses=[(int(g), s) for p in parts for g, s in p["gc_pauses"]],
        reference=(options.effective_reference, *reference),
        db_cpu=sum(p["db_cpu"] for p in parts),
        workers=n,
        children_cpu=sum(p["children_cpu"] for p in parts),
    )
    # Only the scheduler's and storage's settings of the config reach the report.
    config = build_config(options, endpoints, db, BENCH_CLUSTER)
    tally = MergedTally.of(dumps, origin, (t_start, t_end))
    report = build_report(options, config, tally, _window_batches(dumps), samples)
    report.workers = [_worker_figures(d, window) for d in dumps]
    return report
