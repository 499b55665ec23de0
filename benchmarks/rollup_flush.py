"""What the rollups cost per check from the loop's crediting to the stored row: a
``BatchWriter`` over a real ``SqlStore`` (SQLite file), each check's state and
result queued, credited to the rollups (``rollups``) or not (``baseline``), and a
flush every 1,000 checks (10,000 services every 5 s, a flush each half second),
against the ``pymon`` on ``PYTHONPATH`` (so one script measures two trees).

From the repository root::

    PYTHONPATH=src .venv/bin/python -m benchmarks.rollup_flush [--flushes 40]
    PYTHONPATH=/tmp/before/src .venv/bin/python benchmarks/rollup_flush.py

Reported per check, the difference between the two modes (best of ``--repeat``,
the modes alternating, the collector set as ``pymon run`` sets it): the CPU of the
whole process, of the event loop's thread and of the rest (the SQLite writer
thread). ``--mode`` runs one side only, for an instruction count under callgrind.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

from benchmarks.rollup_loop import checks
from pymon.model import ServiceState
from pymon.store.base import ResultRecord
from pymon.store.sql import SqlStore
from pymon.store.writer import BatchWriter
from pymon.tuning import relaxed_gc

_SERVICES = 10_000
_GAP = 2 * 5.0 + 10.0
_FLUSH = 1_000
# Half an hour before a UTC day ends, so a long run crosses an hour and the day.
_T0 = 1_800_000_000.0 // 86_400 * 86_400 - 1_800.0


def _checks(count: int) -> list[tuple[ServiceState, ServiceState, ResultRecord]]:
    """(previous, new state, result) of ``count`` checks (benchmarks.rollup_loop's)."""
    return [
        (previous, state, ResultRecord(state.name, k, state.status, "", {}, at, 0.002, 0.001))
        for k, (previous, state) in enumerate(checks(count, _T0))
        if (at := state.last_check) is not None
    ]


async def _run(flushes: int, rollups: bool) -> tuple[float, float]:
    """(process, loop thread) CPU seconds for ``flushes`` flushes of 1,000 checks,
    after a first round over every service (rows created, outside the clock)."""
    checks = _checks(_SERVICES + flushes * _FLUSH)
    with tempfile.TemporaryDirectory() as folder:
        store = SqlStore(f"sqlite:///{folder}/bench.db")
        await store.open()
        writer = BatchWriter(store, max_batch=5_000)
        try:
            cpu = loop = 0.0
            for first in range(0, len(checks), _FLUSH):
                timed = first >= _SERVICES
                began_cpu, began_loop = time.process_time(), time.thread_time()
                for previous, state, result in checks[first : first + _FLUSH]:
                    if rollups:
                        writer.credit(previous, state, result.duration, _GAP)
                    writer.add(state, result, [])
                await writer.flush()
                if timed:
                    cpu += time.process_time() - began_cpu
                    loop += time.thread_time() - began_loop
        finally:
            await store.close()
    return cpu, loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flushes", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mode", choices=("both", "rollups", "baseline"), default="both")
    args = parser.parse_args()
    modes = [args.mode == "rollups"] if args.mode != "both" else [False, True]
    best: dict[bool, tuple[float, float]] = {}
    for _ in range(args.repeat):
        for mode in modes:
            with relaxed_gc():
                cpu, loop = asyncio.run(_run(args.flushes, mode))
            held = best.get(mode)
            best[mode] = (cpu, loop) if held is None else (min(held[0], cpu), min(held[1], loop))
    per = 1e6 / (args.flushes * _FLUSH)
    for mode, (cpu, loop) in sorted(best.items()):
        name = "rollups" if mode else "baseline"
        print(
            f"{name:8s} per check, best of {args.repeat}: process {cpu * per:.1f} us, "
            f"loop thread {loop * per:.1f} us, other threads {(cpu - loop) * per:.1f} us"
        )
    if len(best) == 2:
        (c0, l0), (c1, l1) = best[False], best[True]
        print(
            f"rollups' share per check: process {(c1 - c0) * per:.1f} us, "
            f"loop thread {(l1 - l0) * per:.1f} us, other threads "
            f"{((c1 - l1) - (c0 - l0)) * per:.1f} us"
        )


if __name__ == "__main__":
    main()
