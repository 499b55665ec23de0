"""CPU per operation of each part of a check's path, measured one part at a time.

From the repository root::

    .venv/bin/python -m benchmarks.components [--loop uvloop] [--repeat 5] [PART ...]

Parts: ``tcp`` (one tcp check), ``http`` (one http check through the daemon's
shared session), ``engine`` (the daemon with a check that does no I/O: scheduler,
run_check, rules, writer, with and without the SQL store), ``rules``
(``rules.apply``), ``store`` (``SqlStore.write`` per result at several batch sizes).
Variants from ``benchmarks/variants.py`` may be applied first with ``--variants``.

Each figure is the best of ``--repeat`` rounds of process CPU time (user + system,
all threads) divided by the operations done: the best round is the one least
disturbed by other processes on the machine. The network parts talk to the same
separate target process as ``pymon bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import math
import resource
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pymon.bench import _TargetProcess
from pymon.checks import REGISTRY, CheckContext, check_type, register, run_check
from pymon.checks.http import HttpSpec
from pymon.checks.tcp import TcpSpec
from pymon.config.schema import CheckSpec, Config, ServiceConfig, StorageConfig, WebConfig
from pymon.engine import rules
from pymon.model import CheckResult, Event, ServiceState, Status
from pymon.store.base import ResultRecord
from pymon.store.sql import SqlStore

PARTS = ("tcp", "http", "engine", "rules", "store")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _line(label: str, micros: float, note: str = "") -> None:
    print(f"{label:44s} {micros:8.1f} µs{('   ' + note) if note else ''}", flush=True)


async def _per_op(
    n: int, repeat: int, op: Callable[[int], Awaitable[Any]], concurrency: int = 50
) -> tuple[float, int]:
    """Best CPU µs per call of ``op`` over ``repeat`` rounds of ``n`` calls; and failures."""
    slots = asyncio.Semaphore(concurrency)
    failures = 0

    async def one(i: int) -> None:
        nonlocal failures
        async with slots:
            result = await op(i)
        if isinstance(result, CheckResult) and result.status is not Status.OK:
            failures += 1

    await asyncio.gather(*(one(i) for i in range(min(n, 500))))  # warm-up
    best = math.inf
    for _ in range(repeat):
        c0 = _cpu()
        await asyncio.gather(*(one(i) for i in range(n)))
        best = min(best, (_cpu() - c0) / n * 1e6)
    return best, failures


class _NoStore:
    """A Store that keeps nothing: the engine's own cost, without the database."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def load_states(self) -> dict[str, ServiceState]:
        return {}

    async def load_heartbeats(self) -> dict[str, Any]:
        return {}

    async def write(self, states: Any, results: Any, events: Any) -> None: ...


class _NullSpec(CheckSpec):
    """Keys of the benchmark-only ``bench-null`` check: none."""


async def _check_null(spec: _NullSpec, ctx: CheckContext) -> CheckResult:
    """Returns ok after one trip through the loop, like a check with instant I/O."""
    await asyncio.sleep(0)
    return CheckResult(Status.OK, "fine", {"value": 1.0})


async def _engine(rate: float, with_store: bool, repeat: int) -> float:
    from pymon.engine.daemon import Daemon

    if "bench-null" not in REGISTRY:
        register("bench-null", _NullSpec)(_check_null)
    interval = 5.0
    services = int(rate * interval)
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(
            services=tuple(
                ServiceConfig(name=f"n{i}", type="bench-null", check=_NullSpec(), interval=interval)
                for i in range(services)
            ),
            storage=StorageConfig(url=f"sqlite:///{Path(tmp) / 'engine.db'}"),
            web=WebConfig(enabled=False),
        )
        store: Any = SqlStore(config.storage.url) if with_store else _NoStore()
        daemon = Daemon(config, store=store)
        await daemon.start()
        try:
            await asyncio.sleep(2 * interval)
            best = math.inf
            for _ in range(repeat):
                runs0, c0 = daemon.scheduler.stats.runs, _cpu()
                await asyncio.sleep(5.0)
                runs = daemon.scheduler.stats.runs - runs0
                best = min(best, (_cpu() - c0) / max(1, runs) * 1e6)
        finally:
            await daemon.stop()
    return best


def _store_rows(batch: int, seq: int) -> tuple[list[ServiceState], list[ResultRecord]]:
    now = time.time()
    metrics = {"status_code": 200.0, "response_time_ms": 1.5, "body_bytes": 3.0}
    states = [
        ServiceState(
            f"s{i}",
            Status.OK,
            Status.OK,
            Status.OK,
            True,
            False,
            seq,
            "HTTP 200 OK, 3 bytes in 2 ms",
            metrics,
            now,
            now - 60,
            0.002,
            {"ok": now},
            seq,
        )
        for i in range(batch)
    ]
    results = [
        ResultRecord(f"s{i}", seq, Status.OK, "HTTP 200 OK", metrics, now, 0.002, 0.001)
        for i in range(batch)
    ]
    return states, results


async def main(args: argparse.Namespace) -> None:
    """Measure the parts named on the command line."""
    parts = args.parts or list(PARTS)
    repeat = args.repeat
    target = await _TargetProcess.start(2) if {"tcp", "http"} & set(parts) else None
    try:
        if target is not None and "tcp" in parts:
            tcp = check_type("tcp")
            specs = [TcpSpec(host="127.0.0.1", port=p) for p in target.tcp_ports]

            async def tcp_op(i: int) -> CheckResult:
                ctx = CheckContext(timeout=5.0, http_session=_no_session)
                return await run_check(tcp, specs[i % len(specs)], ctx)

            micros, bad = await _per_op(args.n, repeat, tcp_op)
            _line("tcp check (run_check)", micros, f"failures {bad}")
        if target is not None and "http" in parts:
            from pymon.engine.daemon import HttpSessions

            http = check_type("http")
            hspecs = [HttpSpec(url=f"http://127.0.0.1:{p}/x") for p in target.http_ports]
            sessions = HttpSessions()

            async def http_op(i: int) -> CheckResult:
                ctx = CheckContext(timeout=5.0, http_session=sessions.get)
                return await run_check(http, hspecs[i % len(hspecs)], ctx)

            try:
                micros, bad = await _per_op(args.n, repeat, http_op)
            finally:
                await sessions.close()
            _line("http check (run_check, daemon session)", micros, f"failures {bad}")
        if "engine" in parts:
            for with_store in (False, True):
                micros = await _engine(args.rate, with_store, repeat)
                what = "SqlStore" if with_store else "no store"
                _line(f"engine per run at {args.rate:g}/s, {what}", micros)
        if "rules" in parts:
            service = ServiceConfig(
                name="x",
                type="http",
                check=HttpSpec(url="http://127.0.0.1/"),
                thresholds=dict(check_type("http").thresholds),
            )
            result = CheckResult(Status.OK, "HTTP 200 OK", {"status_code": 200.0}, time.time())
            state = ServiceState("x")
            best = math.inf
            for _ in range(repeat):
                c0 = _cpu()
                for _ in range(20_000):
                    rules.apply(state, result, service, 1.0)
                best = min(best, (_cpu() - c0) / 20_000 * 1e6)
            _line("rules.apply", best)
        if "store" in parts:
            with tempfile.TemporaryDirectory() as tmp:
                store = SqlStore(f"sqlite:///{Path(tmp) / 'store.db'}")
                await store.open()
                try:
                    seq = 0
                    for batch in (100, 1000, 5000):
                        best = math.inf
                        for _ in range(repeat):
                            rounds = max(2, 10_000 // batch)
                            c0 = _cpu()
                            for _ in range(rounds):
                                seq += 1
                                states, results = _store_rows(batch, seq)
                                events: list[Event] = []
                                await store.write(states, results, events)
                            best = min(best, (_cpu() - c0) / (rounds * batch) * 1e6)
                        _line(f"SqlStore.write per result, batch {batch}", best, "state + result")
                finally:
                    await store.close()
    finally:
        if target is not None:
            await target.stop()


async def _no_session() -> Any:
    raise AssertionError("a tcp check has no use for an HTTP session")


def cli() -> None:
    """Parse arguments, apply variants, run in the chosen loop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", metavar="PART", help=", ".join(PARTS))
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("-n", type=int, default=4000, help="checks per round")
    parser.add_argument("--rate", type=float, default=2000.0, help="engine runs per second")
    parser.add_argument("--variants", default="baseline")
    args = parser.parse_args()
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}; known: {', '.join(PARTS)}")
    from benchmarks.variants import apply_variants

    from pymon.bench import BenchOptions

    apply_variants(args.variants, BenchOptions())
    print(f"# loop={args.loop} variants={args.variants} best of {args.repeat}", flush=True)
    factory = None
    if args.loop == "uvloop":
        factory = importlib.import_module("uvloop").new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main(args))


if __name__ == "__main__":
    cli()
