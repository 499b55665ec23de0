"""What writing the rollups costs the store per check: ``SqlStore.write`` of the two
buckets a check adds (its hour and its day), a flush of 1,000 services at a time,
against the ``pymon`` on ``PYTHONPATH`` (so one script measures two trees).

From the repository root::

    PYTHONPATH=src .venv/bin/python -m benchmarks.rollup_write
    PYTHONPATH=/tmp/before/src .venv/bin/python benchmarks/rollup_write.py

A SQLite file in a temporary directory; the first flush creates the rows, the next
``--flushes`` add to them (what a running daemon does all hour). Reported per
service and flush (two buckets): the CPU of the whole process, of the event loop's
thread alone, and of the SQLite writer thread's work on the rollups (the Python that
makes their statements, then everything it runs in the transaction).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from typing import Any

import pymon.store.sql.sqlite as sqlite_store
from pymon.model import Status
from pymon.store.sql import SqlStore
from pymon.uptime import DAY, HOUR, Bucket, bin_of

_T0 = 1_800_000_000 // DAY * DAY
_SERVICES = 1_000


def _deltas(flush: int) -> list[Bucket]:
    """One check per service: its hour and day deltas (5 s ok, one duration)."""
    return [
        Bucket(
            f"svc-{k:05d}",
            float(_T0 // width * width),
            width,
            checks=1,
            ok_checks=1,
            seconds={"ok": 5.0},
            worst=Status.OK,
            duration_sum=0.01,
            duration_min=0.01,
            duration_max=0.01,
            bins={bin_of(0.01 + flush * 1e-4): 1},
        )
        for k in range(_SERVICES)
        for width in (HOUR, DAY)
    ]


async def _measure(flushes: int) -> dict[str, float]:
    spent = {"statements": 0.0, "transaction": 0.0}
    write = sqlite_store.SqliteBatches._write

    def timed(self: Any, *args: Any, then: Callable[..., Any] | None = None, **kw: Any) -> Any:
        def made(con: Any) -> Any:
            began = time.thread_time()
            try:
                return then(con) if then is not None else ()
            finally:
                spent["statements"] += time.thread_time() - began

        began = time.thread_time()
        try:
            return write(self, *args, then=made if then is not None else None, **kw)
        finally:
            spent["transaction"] += time.thread_time() - began

    sqlite_store.SqliteBatches._write = timed  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as folder:
        store = SqlStore(f"sqlite:///{folder}/rollups.db")
        await store.open()
        try:
            await store.write([], [], [], rollups=_deltas(0))
            batches = [_deltas(k) for k in range(1, flushes + 1)]
            spent["statements"] = spent["transaction"] = 0.0
            cpu, loop = time.process_time(), time.thread_time()
            for batch in batches:
                await store.write([], [], [], rollups=batch)
            cpu, loop = time.process_time() - cpu, time.thread_time() - loop
        finally:
            await store.close()
            sqlite_store.SqliteBatches._write = write  # type: ignore[method-assign]
    per = 1e6 / (flushes * _SERVICES)
    return {
        "process_us": cpu * per,
        "loop_us": loop * per,
        "writer_statements_us": spent["statements"] * per,
        "writer_transaction_us": spent["transaction"] * per,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flushes", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = [asyncio.run(_measure(args.flushes)) for _ in range(args.repeat)]
    best = {key: min(run[key] for run in runs) for key in runs[0]}
    print(
        f"per service and flush (2 buckets), best of {args.repeat}: "
        f"process {best['process_us']:.1f} us, event loop {best['loop_us']:.1f} us, "
        f"writer thread {best['writer_transaction_us']:.1f} us "
        f"(of which making the rollups' statements {best['writer_statements_us']:.1f} us)"
    )


if __name__ == "__main__":
    main()
