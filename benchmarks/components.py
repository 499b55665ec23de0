"""CPU per operation of each part of a check's path, with A/B prototypes interleaved.

From the repository root::

    .venv/bin/python -m benchmarks.components [--loop uvloop] [--rounds 7] [PART ...]

Parts:

``tcp``
    one tcp check, connect only (``check_tcp`` uses a bare socket for it);
``http``
    one http check through aiohttp (``new_session(lean=False)``), through the lean
    HTTP/1.1 client (``new_session()``, ``checks/_http1.py``), through aiohttp
    without happy eyeballs; and a GET on a bare asyncio Protocol (the headroom
    probe ``http-raw``); ``benchmarks/instructions.py`` counts the same
    alternatives' instructions under callgrind;
``engine``
    the daemon running a check that does no I/O at 2,000 runs/s (scheduler,
    run_check, rules, writer; no store), the scheduler's 10 ms tick against a
    wake-up per due time; then with the SQL store, to show the store's share (the rules'
    own share is small: ``rules.apply`` measured 9-17 µs a call);
``rules``
    ``rules.apply`` per call on a steady ok state (no I/O, no loop);
``store``
    ``SqlStore.write`` per result (state + result row) at batch sizes 100, 1,000
    and 5,000, as CPU of the event loop's own thread: the batch's rows built in a
    worker thread (SqlStore) against built on the loop (the path before; variant
    ``store-on-loop``).

The machine this runs on is often shared, so the alternatives of one part are
measured in **interleaved rounds** (A, B, A, B...) in one process, and each is
reported as the median and the best round of process CPU time (user + system, all
threads; for ``store``, the loop thread's alone) per operation, with the median of the
per-round ratios to the first.
Drift in the machine's load then hits both sides alike. The network parts talk to
the same separate target process as ``pymon bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import resource
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import TargetProcess
from benchmarks.variants import (
    http_raw_check,
    lean_session,
    rows_on_loop,
)
from pymon.checks import REGISTRY, CheckContext, CheckType, check_type, run_check
from pymon.checks.http import HttpSpec, new_session
from pymon.checks.tcp import TcpSpec
from pymon.config.schema import CheckSpec, Config, ServiceConfig, StorageConfig, WebConfig
from pymon.engine.scheduler import TICK
from pymon.model import CheckResult, Event, ServiceState, Status
from pymon.store.base import ResultRecord
from pymon.store.sql import SqlStore

PARTS = ("tcp", "http", "engine", "rules", "store")

Round = Callable[[], Awaitable[tuple[float, int]]]
"""One measuring round: returns (CPU seconds, operations done)."""


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def compare(title: str, alternatives: dict[str, Round], rounds: int) -> None:
    """Run the alternatives' rounds interleaved; print µs per operation of each."""
    per: dict[str, list[float]] = {name: [] for name in alternatives}
    for _ in range(rounds):
        for name, one_round in alternatives.items():
            cpu, ops = await one_round()
            per[name].append(cpu / max(1, ops) * 1e6)
    print(f"\n{title}")
    first = next(iter(per.values()))
    for name, values in per.items():
        ratio = statistics.median(v / f for v, f in zip(values, first, strict=True))
        print(
            f"  {name:42s} median {statistics.median(values):7.1f} µs"
            f"  best {min(values):7.1f} µs  x{ratio:.2f}",
            flush=True,
        )


def _check_round(n: int, kind: CheckType, specs: list[Any], session: Any = None) -> Round:
    """A round of ``n`` checks, 50 at a time, through ``run_check``; a failure aborts."""

    async def get_session() -> Any:
        return session

    async def one_round() -> tuple[float, int]:
        slots = asyncio.Semaphore(50)

        async def one(i: int) -> None:
            async with slots:
                ctx = CheckContext(timeout=5.0, http_session=get_session)
                result = await run_check(kind, specs[i % len(specs)], ctx)
            if result.status is not Status.OK:
                raise RuntimeError(f"{kind.name} check failed: {result.message}")

        c0 = _cpu()
        await asyncio.gather(*(one(i) for i in range(n)))
        return _cpu() - c0, n

    return one_round


SizedRound = Callable[[int], Awaitable[tuple[float, int]]]
"""A measuring round of ``n`` operations."""


def http_alternatives(
    ports: list[int],
) -> tuple[dict[str, SizedRound], Callable[[], Awaitable[None]]]:
    """The ways of running an http check against ``ports``, by name: a round of
    ``n`` checks each; and what closes their sessions afterwards."""
    kind = check_type("http")
    specs = [HttpSpec(url=f"http://127.0.0.1:{p}/x") for p in ports]
    sessions = {
        "aiohttp: new_session(lean=False)": new_session(lean=False),
        "lean path: new_session() (checks/_http1.py)": new_session(),
        "aiohttp, no happy eyeballs (http-nohe)": lean_session(new_session(lean=False)),
    }
    raw = CheckType(kind.name, kind.spec, http_raw_check(kind.run))
    alternatives: dict[str, SizedRound] = {
        name: functools.partial(_sized_round, kind, specs, session)
        for name, session in sessions.items()
    }
    alternatives["bare asyncio Protocol (headroom probe)"] = functools.partial(
        _sized_round, raw, specs, None
    )

    async def close() -> None:
        for session in sessions.values():
            await session.close()

    return alternatives, close


async def _sized_round(
    kind: CheckType, specs: list[Any], session: Any, n: int
) -> tuple[float, int]:
    return await _check_round(n, kind, specs, session)()


class _NoStore(SqlStore):
    """An in-memory SqlStore that drops every batch: the engine's own cost, without writes."""

    def __init__(self) -> None:
        super().__init__("sqlite://")

    async def write(self, *batch: Any, **more: Any) -> None:
        """Drop the batch."""


class _NullSpec(CheckSpec):
    """Keys of the benchmark-only ``bench-null`` check: none."""


async def _check_null(spec: _NullSpec, ctx: CheckContext) -> CheckResult:
    """Ok after one trip through the loop, like a check whose I/O is instant."""
    await asyncio.sleep(0)
    return CheckResult(Status.OK, "fine", {"value": 1.0})


async def _engine(rate: float, rounds: int, with_store: bool) -> None:
    from benchmarks.harness.engine import Daemon

    REGISTRY.setdefault("bench-null", CheckType("bench-null", _NullSpec, _check_null))
    interval = 5.0
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(
            services=tuple(
                ServiceConfig(name=f"n{i}", type="bench-null", check=_NullSpec(), interval=interval)
                for i in range(int(rate * interval))
            ),
            storage=StorageConfig(url=f"sqlite:///{Path(tmp) / 'engine.db'}"),
            web=WebConfig(enabled=False),
        )
        store: Any = SqlStore(config.storage.url) if with_store else _NoStore()
        daemon = Daemon(config, store=store)

        def engine_round(tick: float) -> Round:
            async def one_round() -> tuple[float, int]:
                daemon.runtime.scheduler._tick = tick
                await asyncio.sleep(0.5)  # let the scheduler pick the new tick up
                runs0, c0 = daemon.runtime.scheduler.stats.runs, _cpu()
                await asyncio.sleep(3.0)
                return _cpu() - c0, daemon.runtime.scheduler.stats.runs - runs0

            return one_round

        await daemon.start()
        try:
            await asyncio.sleep(2 * interval)
            what = "SqlStore" if with_store else "no store"
            await compare(
                f"engine per run at {rate:g} runs/s, check without I/O, {what}",
                {
                    f"scheduler as is ({TICK * 1000:g} ms tick)": engine_round(TICK),
                    "a wake-up per due time (no tick)": engine_round(0.0),
                },
                rounds,
            )
        finally:
            await daemon.stop()


async def _rules(rounds: int, calls: int = 20_000) -> None:
    from pymon.config.schema import NotificationsConfig
    from pymon.engine import rules

    service = ServiceConfig(name="a", type="tcp", check=TcpSpec(host="127.0.0.1", port=1))
    policy = NotificationsConfig()
    result = CheckResult(Status.OK, "fine", {"connect_ms": 0.2}, time.time(), 0.001)
    situation = rules.Situation(time.time())
    state = ServiceState("a")
    for _ in range(30):  # past the flap guard and a full flap-detection window
        state = rules.apply(state, None, result, service, policy, situation).state

    async def one_round() -> tuple[float, int]:
        c0 = _cpu()
        for _ in range(calls):
            rules.apply(state, None, result, service, policy, situation)
        return _cpu() - c0, calls

    await compare("rules.apply on a steady ok state", {"as is": one_round}, rounds)


def _store_rows(batch: int, seq: int) -> tuple[list[ServiceState], list[ResultRecord]]:
    now = time.time()
    metrics = {"status_code": 200.0, "response_time_ms": 1.5, "body_bytes": 3.0}
    states = [
        ServiceState(
            name=f"s{i}",
            status=Status.OK,
            previous_status=Status.OK,
            confirmed_status=Status.OK,
            confirmed=True,
            count=seq,
            message="HTTP 200 OK, 3 bytes in 2 ms",
            metrics=metrics,
            last_check=now,
            last_change=now - 60,
            last_duration=0.002,
            last_by_status={"ok": now},
            seq=seq,
        )
        for i in range(batch)
    ]
    results = [
        ResultRecord(f"s{i}", seq, Status.OK, "HTTP 200 OK", metrics, now, 0.002, 0.001)
        for i in range(batch)
    ]
    return states, results


async def _store(rounds: int) -> None:
    import pymon.store.sql

    in_thread = pymon.store.sql._prepare
    with tempfile.TemporaryDirectory() as tmp:
        store = SqlStore(f"sqlite:///{Path(tmp) / 'store.db'}")
        await store.open()
        seq = 0
        try:
            for batch in (100, 1000, 5000):

                def store_round(prepare: Any, batch: int = batch) -> Round:
                    async def one_round() -> tuple[float, int]:
                        nonlocal seq
                        pymon.store.sql._prepare = prepare
                        batches = max(2, 10_000 // batch)
                        made = [_store_rows(batch, seq + 1 + n) for n in range(batches)]
                        seq += batches
                        no_events: list[Event] = []
                        c0 = time.thread_time()
                        for states, results in made:
                            await store.write(states, results, no_events)
                        return time.thread_time() - c0, batches * batch

                    return one_round

                await compare(
                    f"SqlStore.write: event loop thread's CPU per result, batch {batch}",
                    {
                        "rows built in a thread (SqlStore)": store_round(in_thread),
                        "rows built on the loop (before)": store_round(rows_on_loop),
                    },
                    rounds,
                )
        finally:
            pymon.store.sql._prepare = in_thread
            await store.close()


async def main(args: argparse.Namespace) -> None:
    """Measure the parts named on the command line."""
    parts = args.parts or list(PARTS)
    rounds = args.rounds
    target = await TargetProcess.start(2) if {"tcp", "http"} & set(parts) else None
    try:
        if target is not None and "tcp" in parts:
            kind = check_type("tcp")
            specs = [TcpSpec(host="127.0.0.1", port=p) for p in target.tcp_ports]
            await _check_round(300, kind, specs)()  # warm-up
            await compare(
                "tcp check (run_check)",
                {"check_tcp, connect only (bare socket)": _check_round(args.n, kind, specs)},
                rounds,
            )
        if target is not None and "http" in parts:
            alternatives, close = http_alternatives(target.http_ports)
            try:
                for one_round in alternatives.values():
                    await one_round(300)  # warm-up
                await compare(
                    "http check (run_check)",
                    {name: functools.partial(one, args.n) for name, one in alternatives.items()},
                    rounds,
                )
            finally:
                await close()
        if "engine" in parts:
            await _engine(args.rate, rounds, with_store=False)
            await _engine(args.rate, rounds, with_store=True)
        if "rules" in parts:
            await _rules(rounds)
        if "store" in parts:
            await _store(rounds)
    finally:
        if target is not None:
            await target.stop()


def cli() -> None:
    """Parse arguments and run in the chosen loop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", metavar="PART", help=", ".join(PARTS))
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("-n", type=int, default=2000, help="checks per round")
    parser.add_argument("--rate", type=float, default=2000.0, help="engine runs per second")
    args = parser.parse_args()
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}; known: {', '.join(PARTS)}")
    print(f"# loop={args.loop}, {args.rounds} interleaved rounds", flush=True)
    factory = None
    if args.loop == "uvloop":
        factory = importlib.import_module("uvloop").new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main(args))


if __name__ == "__main__":
    cli()
