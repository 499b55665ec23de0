"""What one run measured: the figures, grouped as the report prints them, and how the
measured samples become them. :meth:`BenchReport.to_dict` is the JSON form."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from benchmarks.harness.meters import machine_info
from benchmarks.harness.options import BenchOptions
from benchmarks.harness.targets import TargetStats

if TYPE_CHECKING:
    from benchmarks.harness.peers.figures import Comparison
from pymon.config.schema import Config
from pymon.model import Status

__all__ = [
    "BenchReport",
    "CheckFigures",
    "CpuFigures",
    "GcFigures",
    "MemoryFigures",
    "Percentiles",
    "ReferenceFigures",
    "RunFigures",
    "StoreFigures",
    "Tally",
    "TargetFigures",
    "TimelineSecond",
    "WindowSamples",
    "WorkerFigures",
    "build_report",
]


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
    workers: int = 1
    kind: str = "mixed"
    by_type: dict[str, int] = field(default_factory=dict)


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
    # SQLite's own threads (meters.db_thread_cpu): the database's CPU, on SQLite.
    db_thread_s: float = 0.0
    db_thread_share: float = 0.0
    # The programs checks ran (plugins), waited for in the window (meters.children_cpu).
    children_s: float = 0.0
    children_per_1000_checks_s: float = 0.0


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
    batches_per_s: float = 0.0
    results_per_s: float = 0.0


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

    @classmethod
    def of(cls, pauses: Sequence[tuple[int, float]], window: float) -> GcFigures:
        """The figures of ``pauses`` ((generation, seconds) each) over ``window`` seconds."""
        total = sum(seconds for _, seconds in pauses)
        return cls(
            collections=dict(Counter(f"gen{gen}" for gen, _ in pauses)),
            pause_s=round(total, 3),
            pause_share=round(total / window, 4) if window else 0.0,
            max_pause_ms=round(max((s for _, s in pauses), default=0.0) * 1000, 3),
        )


@dataclass(slots=True)
class ReferenceFigures:
    """The same two operations without pymon, on this machine, just before the run.

    A bare aiohttp GET on a fresh connection and a bare socket connect + close, in
    a plain loop against the same targets: what the machine charges for the I/O
    alone. ``mix_us`` is their mean weighted as the bench's services are (half and
    half when mixed), ``per_core``
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
    dns_queries: int = 0
    # What answered: pymon's own target process, or another server (the peers' run).
    server: str = "pymon's target process"

    @classmethod
    def between(cls, before: TargetStats, after: TargetStats) -> TargetFigures:
        """What the target answered from ``before`` to ``after``."""
        return cls(after.http - before.http, after.tcp - before.tcp, after.dns - before.dns)


@dataclass(slots=True)
class WorkerFigures:
    """One worker's own figures in a point of several (``--workers N``)."""

    node: str
    shards: int
    checks: int
    per_second: float
    lateness_p50_ms: float
    lateness_p99_ms: float
    failed: int
    skipped_runs: int
    pymon_cpu_s: float
    loop_thread_utilization: float
    db_thread_s: float
    batches: int
    results_written: int


@dataclass(slots=True)
class BenchReport:
    """Everything one run measured; :meth:`to_dict` is the JSON form."""

    run: RunFigures
    checks: CheckFigures
    lateness: Percentiles
    # How long each check took, start to result (the check's own duration).
    duration: Percentiles
    loop_lag: Percentiles
    gc: GcFigures
    cpu: CpuFigures
    memory: MemoryFigures
    store: StoreFigures
    target: TargetFigures
    reference: ReferenceFigures
    timeline: list[TimelineSecond] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    # With several workers, each one's figures (the rest is their sum or merge).
    workers: list[WorkerFigures] = field(default_factory=list)
    # The same workload through the peer tools (``--peers``).
    peers: Comparison | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready nested dict."""
        return asdict(self) | {"peers": self.peers.to_dict() if self.peers else None}


@dataclass(slots=True)
class WindowSamples:
    """The raw differences over the window, as the run took them (see bench.py)."""

    window: float
    skipped: int
    writer_failures: int
    cpu: tuple[float, float]  # pymon's (user, system) seconds
    loop_cpu: float
    load: tuple[float, float]  # 1-minute load average before, after
    busy: float  # CPU seconds the whole machine was busy
    target_cpu: float
    target: TargetFigures
    rss: tuple[int, int]  # bytes before the daemon was built, once it runs
    lag: list[float]
    gc_pauses: list[tuple[int, float]]
    reference: tuple[float, float, float]  # seconds spent, GET and connect CPU seconds
    db_cpu: float = 0.0  # CPU seconds of SQLite's threads
    workers: int = 1
    children_cpu: float = 0.0  # CPU seconds of the programs checks ran


class Tally(Protocol):
    """What a report reads off the store's meter (a MeteredStore, or several merged)."""

    results: list[tuple[Status, float, str, float]]
    batches: list[tuple[float, int, float]]
    origin: float
    seconds: dict[int, list[float]]
    window: tuple[float, float]


_NUMBERS = re.compile(r"\d+(\.\d+)?")


def _failure_kind(message: str) -> str:
    # Ports, times and addresses differ per service; without them the same failure
    # reads the same, so they can be counted.
    return _NUMBERS.sub("#", message)[:160]


def build_report(
    options: BenchOptions,
    config: Config,
    store: Tally,
    batches: list[tuple[float, int, float]],
    s: WindowSamples,
) -> BenchReport:
    """The report of a run: its window's results from ``store``, ``batches`` of the
    window, and what was sampled around it."""
    results = store.results
    total = len(results)
    by_status = Counter(status.value for status, _, _, _ in results)
    failures = Counter(
        _failure_kind(msg) for status, _, msg, _ in results if status is not Status.OK
    )
    per_1000 = 1000 / total if total else 0.0
    written = sum(n for _, n, _ in batches)
    window, cpu, loop_cpu, rss = s.window, s.cpu, s.loop_cpu, s.rss
    return BenchReport(
        run=RunFigures(
            services=options.services,
            tcp=options.tcp_services,
            http=options.http_services,
            interval_s=options.interval,
            warmup_s=options.effective_warmup,
            window_s=round(window, 3),
            concurrency=config.scheduler.concurrency,
            timeout_s=options.effective_timeout,
            flush_interval_s=config.storage.flush_interval,
            loop=options.loop,
            ports_per_kind=options.effective_ports,
            workers=s.workers,
            kind=options.kind,
            by_type=options.by_type,
        ),
        checks=CheckFigures(
            total=total,
            per_second=round(total / window, 1),
            expected_per_second=round(options.services / options.interval, 1),
            ok=by_status.get(Status.OK.value, 0),
            failed=total - by_status.get(Status.OK.value, 0),
            by_status=dict(by_status),
            failure_samples=dict(failures.most_common(5)),
            skipped_runs=s.skipped,
        ),
        lateness=Percentiles.of([lateness for _, lateness, _, _ in results]),
        duration=Percentiles.of([duration for _, _, _, duration in results]),
        loop_lag=Percentiles.of(s.lag),
        gc=GcFigures.of(s.gc_pauses, window),
        cpu=CpuFigures(
            pymon_s=round(sum(cpu), 3),
            pymon_user_s=round(cpu[0], 3),
            pymon_system_s=round(cpu[1], 3),
            pymon_per_1000_checks_s=round(sum(cpu) * per_1000, 4),
            pymon_utilization=round(sum(cpu) / window, 3),
            loop_thread_s=round(loop_cpu, 3),
            loop_thread_per_1000_checks_s=round(loop_cpu * per_1000, 4),
            loop_thread_utilization=round(loop_cpu / window, 3),
            target_s=round(s.target_cpu, 3),
            target_per_1000_checks_s=round(s.target_cpu * per_1000, 4),
            target_utilization=round(s.target_cpu / window, 3),
            machine_busy_cores=round(s.busy / window, 3),
            others_cores=round(max(0.0, s.busy - sum(cpu) - s.target_cpu) / window, 3),
            db_thread_s=round(s.db_cpu, 3),
            db_thread_share=round(s.db_cpu / sum(cpu), 3) if sum(cpu) else 0.0,
            children_s=round(s.children_cpu, 3),
            children_per_1000_checks_s=round(s.children_cpu * per_1000, 4),
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
            write_busy=round(sum(seconds for _, _, seconds in batches) / window, 3),
            writer_failures=s.writer_failures,
            batches_per_s=round(len(batches) / window, 1),
            results_per_s=round(written / window, 1),
        ),
        target=s.target,
        reference=_reference_figures(
            s.reference, loop_cpu * per_1000 / 1000, options.tcp_services / options.services
        ),
        timeline=_timeline(store),
        machine=machine_info() | {"loadavg_1m_before": s.load[0], "loadavg_1m_after": s.load[1]},
    )


def _timeline(store: Tally) -> list[TimelineSecond]:
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
    reference: tuple[float, float, float], loop_per_check: float, tcp_share: float
) -> ReferenceFigures:
    seconds, get, connect = reference
    mix = get * (1 - tcp_share) + connect * tcp_share
    return ReferenceFigures(
        seconds=seconds,
        get_us=round(get * 1e6, 1),
        connect_us=round(connect * 1e6, 1),
        mix_us=round(mix * 1e6, 1),
        per_core=round(1 / mix) if mix else 0,
        pymon_ratio=round(loop_per_check / mix, 2) if mix else 0.0,
    )
