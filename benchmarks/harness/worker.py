"""One worker of a point of several (``--workers N``): one daemon, one node of the cluster.

Its program is ``python -m benchmarks.harness.worker SPEC`` (workers.py starts it):
``SPEC`` is a JSON :class:`~benchmarks.harness.workers.WorkerSpec`. Once its daemon
runs it prints ``ready``; the parent answers with the window's wall-clock start on
a line of stdin (the same for every worker, so their windows coincide); it measures
the window as a single-process run does, writes its
:class:`~benchmarks.harness.workers.WorkerDump` as JSON and exits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from benchmarks.harness.bench import Measured, loop_factory, measure
from benchmarks.harness.engine import BenchDaemon
from benchmarks.harness.workers import WorkerDump, WorkerSpec
from benchmarks.harness.workload import build_config
from pymon.config.schema import ClusterConfig, Config
from pymon.tuning import relaxed_gc

__all__ = ["main"]

# How often a worker looks whether the cluster has settled, and how long it waits
# for that before it measures anyway (the report then shows the shards it held).
SETTLE_POLL = 0.5
SETTLE_TIMEOUT = 120.0


def _dump(node: str, measured: Measured) -> WorkerDump:
    store = measured.store
    return WorkerDump(
        node=node,
        shards=measured.shards,
        origin=store.origin,
        results=[[status.value, late, msg, took] for status, late, msg, took in store.results],
        all_batches=[list(b) for b in store.batches],
        batches=[list(b) for b in measured.batches],
        seconds={str(k): v for k, v in store.seconds.items()},
        samples=asdict(measured.samples),
    )


async def _run(spec: WorkerSpec) -> WorkerDump:
    options = spec.bench_options()
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def config() -> Config:
        cluster = ClusterConfig(**spec.cluster)
        return build_config(options, spec.endpoints(), Path(spec.db), cluster)

    async def window_start(daemon: BenchDaemon) -> float:
        # The first node up takes every shard and hands half over at a later beat;
        # the warm-up is counted from the settled cluster, not from that start-up.
        share = ClusterConfig(**spec.cluster).shards // options.workers
        for _ in range(round(SETTLE_TIMEOUT / SETTLE_POLL)):
            if daemon.shards in (share, share + 1):
                break
            await asyncio.sleep(SETTLE_POLL)
        print("ready", flush=True)
        start = float(await reader.readline())
        await asyncio.sleep(max(0.0, start - time.time()))
        return start

    measured = await measure(
        options.duration,
        config,
        window_start,
        lambda _msg: None,
        node=spec.node,
        worker=spec.worker,
    )
    return _dump(spec.node, measured)


def main(argv: list[str]) -> None:
    """Run the worker of the SPEC file ``argv[1]``."""
    spec = WorkerSpec(**json.loads(Path(argv[1]).read_text()))
    # Which worker said what, and when: a cluster's trouble is read across workers.
    logging.basicConfig(
        level=os.environ.get("PYMON_BENCH_LOG", "WARNING").upper(),
        format=f"%(asctime)s {spec.node} %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    # A worker's shards moving is what to read first when a point goes wrong.
    logging.getLogger("pymon.cluster").setLevel(logging.INFO)
    options = spec.bench_options()
    # As `pymon run` does, and as a single-process point runs.
    with relaxed_gc(), asyncio.Runner(loop_factory=loop_factory(options.loop)) as runner:
        dump = runner.run(_run(spec))
    Path(spec.out).write_text(json.dumps(asdict(dump)))


if __name__ == "__main__":
    main(sys.argv)
