"""A big config under ``pymon run``: start-up, memory, and checks during a reload.

One real ``pymon run`` process (web on, SQLite) with ``--services`` tcp services at
``--interval`` against the bench's target process. It times the start (until
``/healthz`` answers), reads the process's RSS once every service has run, then
sends SIGHUP with the file unchanged but for one service's description, so the
whole file is read, validated and compared again, and times the reload (until the
log says it was applied). Lateness (how long after its due time a check started)
is read afterwards from the results table, for the checks that started before the
reload, while it ran (and 5 s after), and for ``--after`` seconds after that. With
``--py-spy FILE`` the reload is profiled (``.txt``: collapsed stacks, else an SVG flame
graph); with ``--tree PATH`` the daemon is that source tree's (e.g. a worktree of an
older commit), for a before/after. From the repository root::

    .venv/bin/python -m benchmarks.reload --services 100000 --interval 60s
    .venv/bin/python -m benchmarks.reload --services 100000 --interval 60s --tree /tmp/before

Prints one table and appends a JSON line to ``--out`` if given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.servers import reserved_port

from benchmarks.harness.meters import rss_bytes
from benchmarks.harness.options import SERVICES_PER_PORT
from benchmarks.harness.targets import TargetProcess
from pymon.durations import parse_duration

# What SIGHUP's reload says once it is applied (daemon.py, Reloader).
APPLIED = re.compile(r"reload \(SIGHUP\): ")


def write_config(path: Path, services: int, interval: float, ports: list[int], web: int) -> None:
    """``services`` tcp services spread over ``ports``; web on ``web``; no file watch."""
    lines = [
        f'storage: {{url: "sqlite:///{path.parent / "pymon.db"}"}}',
        f"web: {{listen: 127.0.0.1:{web}}}",
        "reload: {watch: false}",
        "log: {level: info}",
        f"defaults: {{interval: {interval:g}s, timeout: {min(interval, 10.0):g}s}}",
        "services:",
    ]
    lines += [
        f"  - {{name: s{n:06d}, type: tcp, host: 127.0.0.1, port: {ports[n % len(ports)]}}}"
        for n in range(services)
    ]
    path.write_text("\n".join(lines) + "\n")


def wait_for(test: Any, what: str, timeout: float) -> float:
    """Poll ``test`` until it is true; the seconds it took."""
    began = time.monotonic()
    while not test():
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.1)
    return time.monotonic() - began


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def checked(db: Path) -> int:
    """Services with at least one stored result."""
    try:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("SELECT count(DISTINCT service) FROM results").fetchone()[0])
    except sqlite3.Error:
        return 0


def lateness(db: Path, since: float, until: float) -> dict[str, float]:
    """Checks that started in [since, until): their count and lateness p50/p99/max (ms)."""
    with sqlite3.connect(db) as conn:
        rows = [
            r[0]
            for r in conn.execute(
                "SELECT lateness FROM results WHERE started_at >= ? AND started_at < ?",
                (since, until),
            )
        ]
    if len(rows) < 2:
        return {"checks": len(rows), "p50": 0.0, "p99": 0.0, "max": 0.0}
    cuts = statistics.quantiles(rows, n=100)
    return {
        "checks": len(rows),
        "p50": cuts[49] * 1000,
        "p99": cuts[98] * 1000,
        "max": max(rows) * 1000,
    }


def timeline(db: Path, since: float, until: float) -> list[float]:
    """The largest lateness (ms) of the checks that started in each second from ``since``."""
    worst = [0.0] * max(0, int(until - since))
    with sqlite3.connect(db) as conn:
        for started, late in conn.execute(
            "SELECT started_at, lateness FROM results WHERE started_at >= ? AND started_at < ?",
            (since, since + len(worst)),
        ):
            second = int(started - since)
            worst[second] = max(worst[second], late * 1000)
    return worst


def _sources(tree: Path | None) -> dict[str, str]:
    """The environment that makes ``pymon run`` the daemon of source tree ``tree``."""
    return {} if tree is None else {"PYTHONPATH": str(tree.resolve() / "src")}


def run(
    services: int,
    interval: float,
    settle: float,
    after: float,
    spy: Path | None = None,
    tree: Path | None = None,
) -> dict[str, Any]:
    ports = max(1, min(16, -(-services // SERVICES_PER_PORT)))
    # One loop holds the target process's pipes from its start to its stop.
    with asyncio.Runner() as runner, tempfile.TemporaryDirectory(prefix="pymon-reload-") as tmp:
        target = runner.run(TargetProcess.start(ports))
        cfg, log_path, web = Path(tmp) / "pymon.yaml", Path(tmp) / "pymon.log", reserved_port()
        write_config(cfg, services, interval, target.tcp_ports, web)
        log = log_path.open("w")
        began = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "pymon", "run", "-c", str(cfg)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **_sources(tree)},
        )
        try:
            wait_for(lambda: healthy(web), "/healthz", 600)
            start = time.monotonic() - began
            db = Path(tmp) / "pymon.db"
            wait_for(lambda: checked(db) >= services, "every service checked", interval * 3 + 60)
            time.sleep(settle)
            rss = rss_bytes(proc.pid) / 2**20
            cfg.write_text(cfg.read_text().replace("s000000,", "s000000, description: x,", 1))
            profiler = None
            if spy is not None:
                profiler = subprocess.Popen(
                    ["py-spy", "record", "-o", str(spy), "--pid", str(proc.pid)]
                    + (["--format", "raw"] if spy.suffix == ".txt" else []),
                    stdout=subprocess.DEVNULL,
                )
            sent = time.time()
            proc.send_signal(signal.SIGHUP)
            took = wait_for(lambda: bool(APPLIED.search(log_path.read_text())), "the reload", 600)
            time.sleep(5)
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                profiler.wait(timeout=60)
            time.sleep(after)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
            log.close()
            runner.run(target.stop())
        before = lateness(db, sent - settle, sent)
        during = lateness(db, sent, sent + took + 5)
        later = lateness(db, sent + took + 5, sent + took + 5 + after)
        seconds = timeline(db, sent - 2, sent + took + 5)
    return {
        "services": services,
        "interval": interval,
        "start_s": round(start, 2),
        "rss_mib": round(rss, 1),
        "reload_s": round(took, 2),
        "before": before,
        "during": during,
        "after": later,
        "timeline_from_minus_2s": [round(ms, 1) for ms in seconds],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=100_000)
    parser.add_argument("--interval", default="60s")
    parser.add_argument("--settle", default="30s", help="steady time before the reload")
    parser.add_argument("--after", default="30s", help="time measured after the reload")
    parser.add_argument("--out", type=Path, help="append a JSON line here")
    parser.add_argument("--py-spy", type=Path, help="a py-spy flame graph of the reload, here")
    parser.add_argument("--tree", type=Path, help="run the daemon of this source tree instead")
    args = parser.parse_args()
    figures = run(
        args.services,
        parse_duration(args.interval),
        parse_duration(args.settle),
        parse_duration(args.after),
        args.py_spy,
        args.tree,
    )
    print(
        f"{figures['services']:,} tcp services every {figures['interval']:g}s: start-up "
        f"{figures['start_s']} s, RSS {figures['rss_mib']} MiB, reload {figures['reload_s']} s"
    )
    print("| checks that started | checks | lateness p50 | p99 | max |")
    print("|---|---|---|---|---|")
    for span in ("before", "during", "after"):
        f = figures[span]
        print(
            f"| {span} the reload | {f['checks']:,} | {f['p50']:.1f} ms | {f['p99']:.1f} ms"
            f" | {f['max']:.1f} ms |"
        )
    print(
        "worst lateness (ms) per second from 2 s before the SIGHUP: "
        + " ".join(f"{ms:.0f}" for ms in figures["timeline_from_minus_2s"])
    )
    if args.out is not None:
        with args.out.open("a") as out:
            out.write(json.dumps(figures) + "\n")


if __name__ == "__main__":
    main()
