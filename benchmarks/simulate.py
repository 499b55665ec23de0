"""What the coordinator costs PostgreSQL: many simulated nodes, no sockets.

Starts a throwaway PostgreSQL (or uses ``--url``), writes a config of ``--services``
tcp services at ``--interval``, and starts ``--nodes`` node processes. Each node is
the real ``pymon run`` (scheduler, rules, batch writer, leases, relay, outbox) with
the tcp row of the check registry swapped for a fake that sleeps ``--answer`` and
returns ok, no socket opened; ``--fail`` of the services (1 % by default) fail for
five intervals at a time, so incidents open and close and notices go to a ``log``
channel. Once the shards are spread, every service has a confirmed status and a
warm-up has passed, it measures a window from PostgreSQL's own statistics
(:mod:`benchmarks.pgstats`) and psutil::

    .venv/bin/python -m benchmarks.simulate --nodes 10 --services 100000 \\
        --interval 60 --answer 50ms --duration 60

Prints a table and appends a JSON line to ``--out``. A node alone is
``python -m benchmarks.simulate node CONFIG NAME --answer S --fail F``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from tests.support.postgres import PostgresServer

from benchmarks.pgstats import (
    CpuMeter,
    Snapshot,
    events_between,
    postgres_pids,
    report,
    snapshot,
    table,
)
from pymon.durations import parse_duration as duration

SHARDS = 256
# A failing service fails this many intervals in a row: enough to confirm the
# change (open an incident, send a notice), then it recovers (a recovery notice).
FAIL_SPELL = 5


def config_text(url: str, services: int, interval: float) -> str:
    """The cluster's config: services of the simulated type, notices to the log."""
    lines = [
        f"  - {{name: s{n:07d}, type: tcp, host: 127.0.0.1, port: 9}}" for n in range(services)
    ]
    return (
        f'storage: {{url: "{url}"}}\n'
        f"defaults: {{interval: {interval}, timeout: {max(interval / 2, 1.0)}, notify: [log]}}\n"
        "notifications: {channels: {log: {type: log}}}\n"
        "web: {enabled: false}\n"
        "reload: {watch: false}\n"
        "log: {level: warning}\n"
        # Every check is a short sleep: the bound on checks in flight must not be
        # what limits a node carrying tens of thousands of services.
        "scheduler: {concurrency: 10000}\n"
        "services:\n" + "\n".join(lines) + "\n"
    )


def failing(service: str, now: float, interval: float, fraction: float) -> bool:
    """Whether ``service`` fails at ``now``: a stable ``fraction`` of the services in
    each spell of FAIL_SPELL intervals, a different set in each spell."""
    spell = int(now // (interval * FAIL_SPELL))
    return zlib.crc32(f"{service}/{spell}".encode()) % 10_000 < fraction * 10_000


def node(config: str, name: str, answer: float, fraction: float) -> None:
    """Run one node: ``pymon run`` with the tcp check replaced by the fake."""
    from pymon.checks import REGISTRY, CheckContext, CheckType
    from pymon.checks.tcp import TcpSpec
    from pymon.cli.run import run
    from pymon.model import CheckResult, Status

    async def simulated(spec: TcpSpec, ctx: CheckContext) -> CheckResult:
        """Answers after a set time, opening no socket (benchmarks/simulate.py)."""
        await asyncio.sleep(answer)
        if failing(ctx.service, ctx.clock.time(), ctx.interval, fraction):
            return CheckResult(Status.FAILED, "simulated failure")
        return CheckResult(Status.OK, "simulated")

    # Only this process's table changes: config validation still knows tcp's keys.
    REGISTRY["tcp"] = CheckType("tcp", TcpSpec, simulated)
    run.main(["-c", config, "--node", name], prog_name="pymon run")


@contextlib.contextmanager
def database(url: str | None) -> Iterator[tuple[str, PostgresServer | None]]:
    """The database URL, and the server when this benchmark started it."""
    if url is not None:
        yield url, None
        return
    server = PostgresServer.start()
    try:
        yield server.create_database("simulate"), server
    finally:
        server.stop()


class Nodes:
    """The node processes, writing their logs to one file."""

    def __init__(self, args: argparse.Namespace, cfg: Path, log: Path) -> None:
        self.log = log.open("w")
        self.names = [f"sim-{i}" for i in range(1, args.nodes + 1)]
        command = [sys.executable, "-m", "benchmarks.simulate", "node", str(cfg)]
        options = ["--answer", str(args.answer), "--fail", str(args.fail)]
        self.procs = [
            subprocess.Popen([*command, name, *options], stdout=self.log, stderr=subprocess.STDOUT)
            for name in self.names
        ]

    @property
    def pids(self) -> list[int]:
        """The node processes' ids."""
        return [proc.pid for proc in self.procs]

    def check_running(self) -> None:
        """Raise if a node has exited (its log says why)."""
        for name, proc in zip(self.names, self.procs, strict=True):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"node {name} exited with {proc.returncode}: see {self.log.name}"
                )

    def stop(self) -> None:
        """SIGTERM every node (each hands its shards over), SIGKILL a node that hangs."""
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.log.close()


async def spread(engine: AsyncEngine, nodes: Nodes) -> None:
    """Wait until every shard is held and each node holds its fair share."""
    low, high = SHARDS // len(nodes.names), -(-SHARDS // len(nodes.names))
    while True:
        nodes.check_running()
        try:
            async with engine.connect() as conn:
                owners = Counter(
                    owner for (owner,) in await conn.execute(text("SELECT owner FROM shards"))
                )
        except DBAPIError:
            owners = Counter()  # the first node has not made the tables yet
        held = {name: owners.get(name, 0) for name in nodes.names}
        if sum(held.values()) == SHARDS and all(low <= n <= high for n in held.values()):
            return
        await asyncio.sleep(1.0)


async def checked(engine: AsyncEngine, nodes: Nodes, services: int) -> None:
    """Wait until every service has a confirmed status: the events of a first result
    and of its confirmation (at the flap guard's count, retried sooner) come once per
    service and must not fall in the window."""
    sql = text("SELECT count(*) FROM service_state WHERE confirmed_status IS NOT NULL")
    while True:
        nodes.check_running()
        async with engine.connect() as conn:
            if (await conn.execute(sql)).scalar_one() >= services:
                return
        await asyncio.sleep(1.0)


async def measure(
    args: argparse.Namespace, url: str, server: PostgresServer | None, workdir: Path
) -> dict[str, object]:
    """Start the nodes, wait for a steady cluster, measure the window; the report."""
    cfg = workdir / "pymon.yaml"
    cfg.write_text(config_text(url, args.services, args.interval))
    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://"))
    nodes = Nodes(args, cfg, workdir / "nodes.log")
    try:
        started = time.monotonic()
        async with asyncio.timeout(args.start_timeout):
            await spread(engine, nodes)
        settled_s = time.monotonic() - started
        print(f"shards spread over {args.nodes} nodes after {settled_s:.0f} s", flush=True)
        async with asyncio.timeout(args.start_timeout):
            await checked(engine, nodes, args.services)
        print(f"every service confirmed after {time.monotonic() - started:.0f} s", flush=True)
        await asyncio.sleep(args.warmup)
        nodes.check_running()
        pg = CpuMeter(lambda: postgres_pids(server, args.pg_pid))
        own = CpuMeter(lambda: nodes.pids)
        before: Snapshot = await snapshot(engine)
        pg.start()
        own.start()
        await asyncio.sleep(args.duration)
        after: Snapshot = await snapshot(engine)
        pg_cpu, nodes_cpu = pg.used(), own.used()
        nodes.check_running()
        return report(
            before,
            after,
            events=await events_between(engine, before.wall, after.wall),
            pg_cpu=pg_cpu,
            nodes_cpu=nodes_cpu,
            settings={
                "nodes": args.nodes,
                "services": args.services,
                "interval_s": args.interval,
                "answer_s": args.answer,
                "fail": args.fail,
                "warmup_s": args.warmup,
                "settled_s": round(settled_s, 1),
            },
        )
    finally:
        nodes.stop()
        await engine.dispose()


def main() -> None:
    if sys.argv[1:2] == ["node"]:
        parser = argparse.ArgumentParser(prog="benchmarks.simulate node")
        parser.add_argument("config")
        parser.add_argument("name")
        parser.add_argument("--answer", type=float, required=True)
        parser.add_argument("--fail", type=float, required=True)
        one = parser.parse_args(sys.argv[2:])
        node(one.config, one.name, one.answer, one.fail)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--services", type=int, default=100_000)
    parser.add_argument("--interval", type=duration, default=60.0)
    parser.add_argument("--answer", type=duration, default=0.05, help="the fake answers after")
    parser.add_argument("--fail", type=float, default=0.01, help="fraction of services failing")
    parser.add_argument("--duration", type=duration, default=60.0, help="the window")
    parser.add_argument("--warmup", type=duration, help="after confirmed (default: interval)")
    parser.add_argument("--start-timeout", type=duration, default=900.0)
    parser.add_argument("--url", help="a PostgreSQL database to use (default: start one)")
    parser.add_argument("--pg-pid", type=int, help="with --url: the postmaster's pid, for CPU")
    parser.add_argument("--out", default="benchmarks/results/2026-12-07-simulate.jsonl")
    args = parser.parse_args()
    if args.warmup is None:
        args.warmup = args.interval
    with tempfile.TemporaryDirectory() as tmp, database(args.url) as (url, server):
        result = asyncio.run(measure(args, url, server, Path(tmp)))
    result |= {"cpus": os.cpu_count(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(table(result))
    print(json.dumps(result))
    with Path(args.out).open("a") as f:
        f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
