"""Locations (issue 18): what a service checked from three places costs, and how soon
its notice follows the second location's confirmation.

``cost``: three ``pymon run`` nodes on one SQLite file, one per location (``a``,
``b``, ``c``), all on 127.0.0.1, ``--services`` tcp services at ``--interval``
against one local port, in three variants run one after the other: ``plain`` (no
locations), ``one`` (``locations: [a]``) and ``three`` (``locations: [a, b, c]``,
quorum 2). Over a ``--window`` after a warm-up it counts the checks (results that
started in it), the store's writes (every service's sequence number is one persisted
result: the location checks' and the combined services' alike) and the CPU the
three processes took::

    .venv/bin/python -m benchmarks.locations cost --services 1000 --interval 5s

``notice``: three nodes in three network namespaces (tests/support/netns.py, as the
test does), one service ``web`` with ``locations: [east, west, north]``, quorum 2,
at 1 s, an e-mail channel to a sink on the host. Each of ``--cuts`` rounds cuts
east's route to the target, waits until east has confirmed, waits a random part of
an interval (so the rounds fall at different phases of the schedule), cuts west's,
and times from the end of west's first failed check (its confirmation: flap guard 1)
to the notice's arrival at the sink; then restores both and waits for the recovery::

    .venv/bin/python -m benchmarks.locations notice --cuts 10

Each run appends one JSON line to ``--out``. Needs root and iproute2 for ``notice``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
from tests.support.locations import LOCATIONS, node_in, write_config
from tests.support.mail import MailSink, ReceivedMail
from tests.support.netns import cut, network, restore
from tests.support.nodes import Node, always_up

from pymon.durations import parse_duration

VARIANTS = {"plain": "", "one": "locations: [a]", "three": "locations: [a, b, c], quorum: 2"}


def _rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=30)) as con:
            return con.execute(sql, params).fetchall()
    except sqlite3.OperationalError:
        return []  # no tables yet: the first node has not made them


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def _nodes(nodes: list[Node]) -> Iterator[list[Node]]:
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def _cpu(nodes: list[Node]) -> float:
    """User + system CPU seconds the nodes' processes took so far."""
    total = 0.0
    for node in nodes:
        assert node.proc is not None
        times = psutil.Process(node.proc.pid).cpu_times()
        total += times.user + times.system
    return total


def cost_config(db: Path, services: int, interval: float, port: int, variant: str) -> str:
    extra = f", {VARIANTS[variant]}" if VARIANTS[variant] else ""
    lines = [
        f"  - {{name: s{n:05d}, type: tcp, host: 127.0.0.1, port: {port}{extra}}}"
        for n in range(services)
    ]
    return (
        f'storage: {{url: "sqlite:///{db}"}}\n'
        f"defaults: {{interval: {interval}s, timeout: 1s}}\n"
        "cluster: {heartbeat: 1s, lease: 5s}\n"
        "reload: {watch: false}\n"
        "log: {level: warning}\n"
        "services:\n" + "\n".join(lines) + "\n"
    )


def cost(args: argparse.Namespace, variant: str, workdir: Path, port: int) -> dict[str, Any]:
    """One variant's figures over the window."""
    db, cfg = workdir / f"{variant}.db", workdir / f"{variant}.yaml"
    cfg.write_text(cost_config(db, args.services, args.interval, port, variant))
    with (workdir / f"{variant}.log").open("w") as log:
        nodes = [Node(f"n-{loc}", cfg, log, args=("--location", loc)) for loc in "abc"]
        with _nodes(nodes):
            expected = args.services * (4 if variant == "three" else 2 if variant == "one" else 1)

            def all_running() -> bool:
                found = _rows(db, "SELECT count(*) FROM service_state WHERE seq > 0")
                return bool(found) and found[0][0] >= expected

            _wait(all_running, f"{expected} services with a result")
            time.sleep(args.warmup)
            seq0 = dict(_rows(db, "SELECT name, seq FROM service_state"))
            cpu0, at0 = _cpu(nodes), time.time()
            time.sleep(args.window)
            cpu1, at1 = _cpu(nodes), time.time()
            seq1 = dict(_rows(db, "SELECT name, seq FROM service_state"))
            started = _rows(
                db,
                "SELECT instr(service, '@') > 0, count(*) FROM results"
                " WHERE started_at >= ? AND started_at < ? GROUP BY 1",
                at0,
                at1,
            )
    span = at1 - at0
    by_kind = {bool(located): count for located, count in started}
    writes = sum(seq - seq0.get(name, 0) for name, seq in seq1.items())
    due = args.services * span / args.interval
    cpu = cpu1 - cpu0
    return {
        "benchmark": "locations-cost",
        "variant": variant,
        "services": args.services,
        "interval_s": args.interval,
        "window_s": round(span, 1),
        "checks_per_s": round((by_kind.get(True, 0) + by_kind.get(False, 0)) / span, 1),
        "location_checks_per_s": round(by_kind.get(True, 0) / span, 1),
        "store_writes_per_s": round(writes / span, 1),
        "cpu_s_per_s": round(cpu / span, 3),
        "cpu_ms_per_service_interval": round(1000 * cpu / due, 3),
        "cpu_ms_per_write": round(1000 * cpu / writes, 3) if writes else None,
    }


def notices(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Cut two locations ``--cuts`` times; the delays from the second confirmation."""
    db, cfg = workdir / "p.db", workdir / "p.yaml"
    arrivals: list[tuple[float, ReceivedMail]] = []
    delays: list[float] = []
    with (
        network(3) as net,
        always_up(net.target) as port,
        MailSink(host=net.host) as sink,
        (workdir / "nodes.log").open("w") as log,
    ):
        sink.on_message = lambda mail: arrivals.append((time.time(), mail))
        write_config(cfg, db, net, port, sink)
        east, west, _ = net.namespaces
        nodes = [
            node_in(ns, cfg, log, loc) for loc, ns in zip(LOCATIONS, net.namespaces, strict=True)
        ]

        def confirmed(name: str) -> str | None:
            found = _rows(db, "SELECT confirmed_status FROM service_state WHERE name = ?", name)
            return found[0][0] if found else None

        def received(count: int) -> Callable[[], bool]:
            return lambda: len(arrivals) >= count

        def every_ok() -> bool:
            return all(confirmed(n) == "ok" for n in ("web", "web@east", "web@west", "web@north"))

        with _nodes(nodes):
            _wait(every_ok, "every location ok")
            # Notices of the start (the service is unknown until its locations
            # report) are not the measured ones: let them out first.
            time.sleep(3)
            base = len(arrivals)
            for n in range(args.cuts):
                cut(east, net.target)
                _wait(lambda: confirmed("web@east") == "failed", "east to confirm")
                time.sleep(random.uniform(0, 1.0))
                cut_at = time.time()
                cut(west, net.target)
                _wait(received(base + 2 * n + 1), "the problem notice", 30)
                arrived, mail = arrivals[base + 2 * n]
                assert mail.message["X-Pymon-Status"] == "FAILED", mail.message["Subject"]
                (ended,) = _rows(
                    db,
                    "SELECT min(started_at + duration) FROM results"
                    " WHERE service = 'web@west' AND status = 'failed' AND started_at >= ?",
                    cut_at,
                )[0]
                delays.append(arrived - ended)
                print(f"cut {n + 1}: notice {1000 * (arrived - ended):.0f} ms", flush=True)
                restore(east, net.target)
                restore(west, net.target)
                _wait(received(base + 2 * n + 2), "the recovery notice", 30)
                _wait(every_ok, "every location ok again")
    delays.sort()
    return {
        "benchmark": "locations-notice",
        "cuts": len(delays),
        "median_ms": round(1000 * delays[len(delays) // 2], 1),
        "min_ms": round(1000 * delays[0], 1),
        "max_ms": round(1000 * delays[-1], 1),
        "all_ms": [round(1000 * d, 1) for d in delays],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    c = sub.add_parser("cost", help="a 3-location service's cost against 1 and none")
    c.add_argument("--services", type=int, default=1000)
    c.add_argument("--interval", type=parse_duration, default=5.0)
    c.add_argument("--warmup", type=float, default=10.0, help="seconds, after every result")
    c.add_argument("--window", type=float, default=30.0, help="seconds measured")
    c.add_argument("--variants", default="plain,one,three")
    n = sub.add_parser("notice", help="the second confirmation to the notice")
    n.add_argument("--cuts", type=int, default=10)
    parser.add_argument("--out", default="benchmarks/results/locations.jsonl")
    args = parser.parse_args()
    reports: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.what == "cost":
            with always_up() as port:
                for variant in args.variants.split(","):
                    reports.append(cost(args, variant, Path(tmp), port))
                    print(json.dumps(reports[-1]), flush=True)
        else:
            reports.append(notices(args, Path(tmp)))
            print(json.dumps(reports[-1]), flush=True)
    stamp = {"cpus": os.cpu_count(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with Path(args.out).open("a") as f:
        for report in reports:
            f.write(json.dumps({**report, **stamp}) + "\n")


if __name__ == "__main__":
    main()
