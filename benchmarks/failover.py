"""Failover time of a cluster: kill a node, time until its services are checked again.

Three ``pymon run`` nodes on a throwaway PostgreSQL (or ``--url``), ``--services``
tcp services at 1 s, the default cluster timing (heartbeat 2 s, lease 10 s). Each
round takes one node (in turn), notes which services it runs (the shards table and
the shard map), stops it and times until every one of them has a result that
started after the stop; then the node comes back and the cluster settles before
the next round. From the repository root::

    .venv/bin/python -m benchmarks.failover --kills 20 --mode kill
    .venv/bin/python -m benchmarks.failover --kills 20 --mode stop

``--mode kill`` is kill -9: a node of the same machine sees at its next heartbeat
that the process is gone and frees its shards (docs/cluster.md). ``--mode stop`` is
SIGSTOP (then SIGCONT once taken over): the process still exists, as a dead machine's
node does to the others, so its shards wait for the lease to run out. Prints the
cluster's checks/s over a steady ``--window`` first (``--kills 0`` for that alone),
then the median and the largest failover time, and appends a JSON line to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from tests.support.nodes import always_up
from tests.support.postgres import PostgresServer
from tests.support.servers import reserved_port

from pymon.checks.tcp import TcpSpec
from pymon.config.schema import ServiceConfig
from pymon.engine.cluster import shard_map

NODES = ("a", "b", "c")


def config_text(url: str, services: int, port: int) -> str:
    lines = [
        f"  - {{name: s{n:05d}, type: tcp, host: 127.0.0.1, port: {port}}}" for n in range(services)
    ]
    return (
        f'storage: {{url: "{url}"}}\n'
        "defaults: {interval: 1s, timeout: 1s}\n"
        "reload: {watch: false}\n"
        "log: {level: warning}\n"
        "services:\n" + "\n".join(lines) + "\n"
    )


@contextlib.contextmanager
def database(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    server = PostgresServer.start()
    try:
        yield server.create_database("failover")
    finally:
        server.stop()


class Cluster:
    """The nodes as processes, and the database they share."""

    def __init__(self, cfg: Path, engine: AsyncEngine, log: Path) -> None:
        self.cfg, self.engine = cfg, engine
        self.log = log.open("w")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        self.procs[name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pymon",
                "run",
                "-c",
                str(self.cfg),
                "--node",
                name,
                "--listen",
                f"127.0.0.1:{reserved_port()}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    async def owners(self) -> dict[int, str | None]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(text("SELECT shard, owner FROM shards"))
            return {int(shard): owner for shard, owner in rows}

    async def latest(self) -> dict[str, float]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT service, max(started_at) FROM results GROUP BY service")
            )
            return {service: float(at) for service, at in rows}

    async def checks_per_s(self, window: float) -> float:
        """Checks the whole cluster ran per second over the last ``window`` seconds
        (results that started in it: the results ring keeps them all at 1 s)."""
        await asyncio.sleep(window)
        since = time.time() - window
        async with self.engine.connect() as conn:
            count = await conn.scalar(
                text("SELECT count(*) FROM results WHERE started_at >= :since"),
                {"since": since},
            )
        return float(count or 0) / window

    async def settled(self) -> None:
        """Wait (up to two minutes) until every node holds shards."""
        async with asyncio.timeout(120):
            while True:
                try:
                    owners = await self.owners()
                except ProgrammingError:
                    owners = {}  # the first node has not made the tables yet
                if owners and set(owners.values()) == set(NODES):
                    return
                await asyncio.sleep(0.2)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.log.close()


async def round_(cluster: Cluster, victim: str, mode: str, shards: dict[str, int]) -> float:
    owners = await cluster.owners()
    theirs = {name for name, shard in shards.items() if owners.get(shard) == victim}
    proc = cluster.procs[victim]
    killed_at = time.time()
    proc.send_signal(signal.SIGKILL if mode == "kill" else signal.SIGSTOP)
    while True:
        latest = await cluster.latest()
        if all(latest.get(name, 0.0) > killed_at for name in theirs):
            took = time.time() - killed_at
            break
        await asyncio.sleep(0.1)
    if mode == "kill":
        proc.wait()
        cluster.start(victim)
    else:
        proc.send_signal(signal.SIGCONT)
    await cluster.settled()
    return took


async def measure(args: argparse.Namespace, url: str, workdir: Path) -> tuple[float, list[float]]:
    with always_up() as port:
        cfg = workdir / "pymon.yaml"
        cfg.write_text(config_text(url, args.services, port))
        # Only names (and depends_on, none here) place a service in a shard.
        services = [
            ServiceConfig(name=f"s{n:05d}", type="tcp", check=TcpSpec(host="127.0.0.1", port=1))
            for n in range(args.services)
        ]
        shards = shard_map(services, 256)
        engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://"))
        cluster = Cluster(cfg, engine, workdir / "nodes.log")
        try:
            for name in NODES:
                cluster.start(name)
            await cluster.settled()
            rate = await cluster.checks_per_s(args.window)
            print(f"cluster: {rate:.0f} checks/s of {args.services} due", flush=True)
            times = []
            for n in range(args.kills):
                took = await round_(cluster, NODES[n % len(NODES)], args.mode, shards)
                print(f"round {n + 1}: {took:.2f} s", flush=True)
                times.append(took)
            return rate, times
        finally:
            cluster.stop_all()
            await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--services", type=int, default=300)
    parser.add_argument("--mode", choices=("kill", "stop"), default="kill")
    parser.add_argument("--window", type=float, default=15.0, help="steady checks/s window")
    parser.add_argument("--url", help="a PostgreSQL database to use (default: start one)")
    parser.add_argument("--out", default="benchmarks/results/failover.jsonl")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, database(args.url) as url:
        rate, times = asyncio.run(measure(args, url, Path(tmp)))
    report = {
        "benchmark": "failover",
        "mode": args.mode,
        "services": args.services,
        "checks_per_s": round(rate, 1),
        "kills": len(times),
        "median_s": round(statistics.median(times), 2) if times else None,
        "max_s": round(max(times), 2) if times else None,
        "cpus": os.cpu_count(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(json.dumps(report))
    with Path(args.out).open("a") as f:
        f.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
