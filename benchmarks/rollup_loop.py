"""What the rollups cost the event loop per check: the work ``ServiceBook.apply`` does
for them, alone, against the ``pymon`` on ``PYTHONPATH`` (so one script measures two
trees side by side).

From the repository root::

    PYTHONPATH=src .venv/bin/python -m benchmarks.rollup_loop [--checks 100000]
    PYTHONPATH=/tmp/before/src .venv/bin/python benchmarks/rollup_loop.py

10,000 services checked every 5 s (2,000 checks a second), a new writer every
1,000 checks (a flush every half second empties the writer's tallies). For each
check: its state queued with the writer, with the rollups (``rollups``) or without
(``baseline``); the difference is what the rollups cost. A tree whose writer has
``credit`` (checks added straight into its tallies) is measured that way, an older
one with ``spans`` building Buckets that ``add`` merges. ``--mode`` runs one side
only, for an instruction count under callgrind::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python benchmarks/rollup_loop.py --mode rollups --checks 20000
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from pymon.model import ServiceState, Status
from pymon.store.writer import BatchWriter
from pymon.uptime import spans

_SERVICES = 10_000
_INTERVAL = 5.0
_GAP = 2 * _INTERVAL + 10.0
_FLUSH = 1_000
_T0 = 1_800_000_000.0


def checks(count: int, t0: float = _T0) -> list[tuple[ServiceState, ServiceState]]:
    """(previous, new) states of ``count`` checks from ``t0``, services in turn (a
    failure now and then, so the time is not all one status)."""
    last: dict[int, ServiceState] = {}
    out = []
    for k in range(count):
        service = k % _SERVICES
        at = t0 + k * (_INTERVAL / _SERVICES)
        status = Status.FAILED if k % 97 == 0 else Status.OK
        state = ServiceState(f"svc-{service:05d}", status, last_check=at)
        out.append((last.get(service) or ServiceState(state.name), state))
        last[service] = state
    return out


def _run(checks: list[tuple[ServiceState, ServiceState]], rollups: bool) -> float:
    """CPU seconds spent queuing ``checks`` (writers made outside the clock)."""
    spent = 0.0
    store: Any = None
    credit = hasattr(BatchWriter, "credit")
    for first in range(0, len(checks), _FLUSH):
        writer = BatchWriter(store)
        block = checks[first : first + _FLUSH]
        began = time.process_time()
        if not rollups:
            for _, state in block:
                writer.add(state, None, [])
        elif credit:
            for previous, state in block:
                writer.credit(previous, state, 0.02, _GAP)  # type: ignore[attr-defined,unused-ignore]
                writer.add(state, None, [])
        else:
            for previous, state in block:
                writer.add(state, None, [], rollups=spans(previous, state, 0.02, _GAP))
        spent += time.process_time() - began
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mode", choices=("both", "rollups", "baseline"), default="both")
    args = parser.parse_args()
    made = checks(args.checks)
    asyncio.set_event_loop(asyncio.new_event_loop())  # the writer's Event wants one
    if args.mode != "both":
        _run(made, args.mode == "rollups")
        return
    costs = []
    for _ in range(args.repeat):
        with_rollups, without = _run(made, True), _run(made, False)
        costs.append((with_rollups - without) / len(made) * 1e6)
    way = "credit" if hasattr(BatchWriter, "credit") else "spans + add"
    shown = ", ".join(f"{c:.2f}" for c in costs)
    print(f"{way}: rollups cost {min(costs):.2f} us a check (best of {args.repeat}: {shown})")


if __name__ == "__main__":
    main()
