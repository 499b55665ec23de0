"""Instructions per http check, counted by callgrind: a figure a busy machine does not move.

From the repository root::

    .venv/bin/python -m benchmarks.instructions [--loop uvloop] [-n 200,1200] [ALTERNATIVE ...]

Each alternative of ``benchmarks.components``' http part (default: all) runs in a
process of its own under ``valgrind --tool=callgrind``, once with few checks and
once with many, against the same target process as ``pymon bench`` (not counted:
valgrind follows no child). The difference of the two runs' instruction counts
(Ir) over the difference of their checks is the cost of one check, start-up and
imports cancelled out. Timing noise does not enter it; what does is what the
instructions miss: time in the kernel (connect, accept, close) is outside the
count, and a cache miss costs as much as an instruction here.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.components import http_alternatives
from benchmarks.harness import TargetProcess

_TOTALS = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


async def _run(name: str, n: int) -> None:
    target = await TargetProcess.start(2)
    try:
        alternatives, close = http_alternatives(target.http_ports)
        try:
            await alternatives[name](n)
        finally:
            await close()
    finally:
        await target.stop()


async def _names() -> list[str]:
    alternatives, close = http_alternatives([])
    await close()
    return list(alternatives)


def _instructions(name: str, n: int, loop: str) -> int:
    """Ir of one process that runs ``n`` checks of alternative ``name``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                "benchmarks.instructions",
                "--one",
                name,
                "-n",
                str(n),
                "--loop",
                loop,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        found = _TOTALS.search(out.read_bytes())
        if found is None:
            raise RuntimeError(f"no instruction total in callgrind's output for {name!r}")
        return int(found[1])


def cli() -> None:
    """Count each alternative's instructions per check (or, with ``--one``, be the counted run)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("alternatives", nargs="*", metavar="ALTERNATIVE")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("-n", default="200,1200", help="checks in the short and the long run")
    parser.add_argument("--one", metavar="ALTERNATIVE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        factory = None
        if args.loop == "uvloop":
            factory = importlib.import_module("uvloop").new_event_loop
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(_run(args.one, int(args.n)))
        return
    short, long = (int(n) for n in args.n.split(","))
    known = asyncio.run(_names())
    chosen = args.alternatives or known
    unknown = set(chosen) - set(known)
    if unknown:
        parser.error(f"unknown alternative(s) {sorted(unknown)}; known: {known}")
    print(f"# loop={args.loop}, Ir per check = (Ir({long}) - Ir({short})) / {long - short}")
    first: float | None = None
    for name in chosen:
        per = (_instructions(name, long, args.loop) - _instructions(name, short, args.loop)) / (
            long - short
        )
        first = first or per
        print(f"  {name:42s} {per / 1000:8.1f} k Ir/check  x{per / first:.2f}", flush=True)


if __name__ == "__main__":
    cli()
