"""``pymon capacity --live``: what a check of each type costs against the config's own
targets, measured through a real daemon as a bench point runs one.

The targets are the operator's, so nothing here checks them more often than the
config does. For each check type, a sample of the config's services of that type
(:func:`sample`: at most N, spread over the config) runs on a daemon of its own
(:func:`derived_config`: a throw-away SQLite store, no web server, no notifications,
one node), each service at its configured interval lengthened to the window when
shorter, on the stable phase the scheduler gives it: in the window each is checked
once at most, and all of them together no faster than the config checks them.
When the window ends no further check starts, and the window stays open until the
checks it started are done (at most their timeout): a target that hangs is measured
too. Each sampled service starts from an ok, confirmed state (:func:`_steady`), as
one that has been up a while, so a check that answers is costed as the steady-state
check it is in a running daemon rather than as a first result (a state change).

A daemon checking a few services a second spends much of its CPU on its own timers
(the writer's ticks, the lease's heartbeat), so a daemon on the same services with
none due (:func:`_idle`) is measured first, over a window as long: each type's CPU is
read against it.

Memory per service cannot be told from a sample of 200 services, so each type's is
weighed on :data:`COPIES` renamed copies of its sample, none due for half a day, each
starting from the state its original reached in the live run (seeded in a store of
their own), on a daemon in a fresh process (:func:`_weigh`): the growth of resident
memory, less what an empty daemon adds, per copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import math
import multiprocessing
import pickle
import statistics
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from benchmarks.harness.bench import Progress, loop_factory, measure
from benchmarks.harness.engine import BenchDaemon
from benchmarks.harness.meters import rss_bytes
from benchmarks.harness.options import LoopName
from pymon.config.schema import (
    Config,
    NotificationsConfig,
    SchedulerConfig,
    ServiceConfig,
    StorageConfig,
    WebConfig,
)
from pymon.model import ServiceState, Status
from pymon.store.sql import SqlStore
from pymon.tuning import relaxed_gc

__all__ = [
    "COPIES",
    "WARMUP",
    "LiveFigures",
    "LiveRun",
    "derived_config",
    "idle_name",
    "live_services",
    "run_live",
    "sample",
]

T = TypeVar("T")

WARMUP = 0.5
"""Seconds from the daemon's start to the window: its start-up settles, nothing more."""

COPIES = 2000
"""Copies of a type's sample weighed for its memory per service."""

# The idle daemon's and the copies' interval; their names put their first runs past
# the half of it (idle_name), long after they are gone.
_IDLE_INTERVAL = 86400.0
# How often the end of the window looks for checks still in flight, and how long past
# the longest timeout it waits for them.
_SETTLE_POLL = 0.02
_SETTLE_MARGIN = 1.0
_NOT_FAILED = frozenset({Status.OK, Status.WARN})


@dataclass(frozen=True, slots=True)
class LiveFigures:
    """One check type measured live: the services sampled, the checks that started in
    the window and how they ended, and what the daemon spent over it."""

    kind: str
    sampled: int
    checks: int
    failed: int  # not ok or warn
    cpu: float  # pymon's CPU seconds over the window, all its threads
    children: float  # CPU seconds of the programs the checks ran (plugins)
    window: float  # seconds
    duration: float  # seconds a check took, start to result (median)
    failure: str  # the most common failure's message ("" without one)


@dataclass(frozen=True, slots=True)
class LiveRun:
    """What ``--live`` measured: the idle daemon's CPU seconds per second, each type's
    figures, and each type's memory per service (bytes)."""

    idle: float
    types: dict[str, LiveFigures]
    memory: dict[str, float]


def sample(services: Sequence[T], most: int) -> list[T]:
    """At most ``most`` of ``services``, spread evenly over them in the config's order
    (the first ones of a long list often share a host, a team or a purpose)."""
    if len(services) <= most:
        return list(services)
    return [services[i * len(services) // most] for i in range(most)]


def live_services(services: Sequence[ServiceConfig], window: float) -> list[ServiceConfig]:
    """``services`` as a live point runs them: each at its interval, lengthened to
    ``window`` when shorter; without parents (they are not in the sample) and without
    notices."""
    return [_changed(s, s.name, max(s.interval, window)) for s in services]


def idle_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name~N``, not in ``taken`` (it is added there), on which a service
    is first due after half of its interval.

    The scheduler puts a service's first run at ``phase(name) x interval``
    (``pymon.engine.scheduler.phase``: the CRC-32 of the name over 2**32); a phase of
    a half or more, one name in two, puts it half a day away at :data:`_IDLE_INTERVAL`.
    """
    seed = zlib.crc32(name.encode())
    k = 0
    while True:
        suffix = f"~{k}" if k else ""
        if zlib.crc32(suffix.encode(), seed) >= 2**31 and name + suffix not in taken:
            taken.add(name + suffix)
            return name + suffix
        k += 1


def derived_config(config: Config, services: Sequence[ServiceConfig], db: Path) -> Config:
    """A config of ``services`` for a measuring daemon: ``config``'s scheduler bound and
    store settings on a throw-away SQLite file at ``db``; no web server, no
    acknowledgement server, no notifications (no notice goes to anyone), one node."""
    return Config(
        instance=config.instance,
        storage=StorageConfig(
            url=f"sqlite:///{db}",
            history=config.storage.history,
            flush_interval=config.storage.flush_interval,
        ),
        web=WebConfig(enabled=False),
        scheduler=SchedulerConfig(concurrency=config.scheduler.concurrency),
        notifications=NotificationsConfig(enabled=False, channels={}),
        services=tuple(services),
    )


def _changed(service: ServiceConfig, name: str, interval: float) -> ServiceConfig:
    return service.model_copy(
        update={"name": name, "interval": interval, "depends_on": [], "notify": False}
    )


def _idle(services: Sequence[ServiceConfig]) -> list[ServiceConfig]:
    """``services`` renamed so that none is due for half a day."""
    taken: set[str] = set()
    return [_changed(s, idle_name(s.name, taken), _IDLE_INTERVAL) for s in services]


def _steady(service: ServiceConfig, now: float) -> ServiceState:
    """An ok state, confirmed a while ago: a service that has been up."""
    return ServiceState(
        service.name,
        status=Status.OK,
        previous_status=Status.OK,
        confirmed_status=Status.OK,
        confirmed=True,
        count=service.flap_guard.ok,
        last_check=now - service.interval,
        last_change=now - _IDLE_INTERVAL,
    )


async def _write_states(db: Path, states: Sequence[ServiceState], history: int) -> None:
    store = SqlStore(f"sqlite:///{db}", history=history)
    await store.open()
    try:
        await store.write(states, [], [])
    finally:
        await store.close()


async def _read_states(db: Path) -> dict[str, ServiceState]:
    store = SqlStore(f"sqlite:///{db}")
    await store.open()
    try:
        return await store.load_states()
    finally:
        await store.close()


async def _warm_up(_daemon: BenchDaemon) -> float:
    await asyncio.sleep(WARMUP)
    return time.time()


async def _idle_cpu(
    config: Config, services: Sequence[ServiceConfig], window: float, workdir: Path, say: Progress
) -> float:
    """CPU seconds per second of a daemon on ``services`` with none of them due."""
    say(f"measuring an idle daemon ({len(services):,} services, none due) for {window:g}s...")
    idle = _idle(services)
    measured = await measure(
        window, lambda: derived_config(config, idle, workdir / "idle.db"), _warm_up, say, grace=0.0
    )
    return sum(measured.samples.cpu) / measured.samples.window


async def _measure_type(
    config: Config,
    kind: str,
    services: Sequence[ServiceConfig],
    window: float,
    workdir: Path,
    say: Progress,
) -> tuple[LiveFigures, list[ServiceState]]:
    """One type's live point, and the state each sampled service reached (in order)."""
    say(f"measuring {kind} checks on {len(services):,} of the config's services for {window:g}s...")
    live = live_services(services, window)
    db = workdir / f"live-{kind}.db"
    now = time.time()
    await _write_states(db, [_steady(s, now) for s in live], config.storage.history)
    longest = max(s.timeout for s in live) + _SETTLE_MARGIN

    async def settle(daemon: BenchDaemon) -> None:
        # A check started in the window is counted, and its CPU too, once it ends (at
        # most its timeout later); none starts meanwhile.
        daemon.hold()
        for _ in range(math.ceil(longest / _SETTLE_POLL)):
            if not daemon.in_flight:
                return
            await asyncio.sleep(_SETTLE_POLL)

    # Nothing is in flight once it settled, and the daemon's stop writes what is left.
    measured = await measure(
        window, lambda: derived_config(config, live, db), _warm_up, say, settle=settle, grace=0.0
    )
    results = measured.store.results
    failures = Counter(message for status, _, message, _ in results if status not in _NOT_FAILED)
    figures = LiveFigures(
        kind=kind,
        sampled=len(services),
        checks=len(results),
        failed=sum(failures.values()),
        cpu=sum(measured.samples.cpu),
        children=measured.samples.children_cpu,
        window=measured.samples.window,
        duration=statistics.median(d for _, _, _, d in results) if results else 0.0,
        failure=failures.most_common(1)[0][0] if failures else "",
    )
    reached = await _read_states(db)
    return figures, [reached[s.name] for s in live]


@dataclass(frozen=True, slots=True)
class _Copies:
    """One type's copies to weigh: their store (seeded with their states), the sample
    pickled (each copy unpickled anew, as a config's services are each parsed on
    their own), and the copies' names: copy i is of sample i % len(sample)."""

    kind: str
    db: str
    originals: tuple[bytes, ...]
    names: tuple[str, ...]


async def _seed(
    kind: str,
    services: Sequence[ServiceConfig],
    reached: Sequence[ServiceState],
    workdir: Path,
    history: int,
) -> _Copies:
    """A store holding :data:`COPIES` copies' states: each its original's in the live
    run under its own name, as a daemon restarting on them would find them."""
    taken: set[str] = set()
    names = [idle_name(f"{services[i % len(services)].name}#{i}", taken) for i in range(COPIES)]
    db = workdir / f"copies-{kind}.db"
    states = [
        dataclasses.replace(reached[i % len(reached)], name=name, incident=None)
        for i, name in enumerate(names)
    ]
    await _write_states(db, states, history)
    originals = tuple(pickle.dumps(s) for s in _idle(services))
    return _Copies(kind, str(db), originals, tuple(names))


def _weigh(
    batches: Sequence[_Copies], bare: Config, loop: LoopName, workdir: str
) -> dict[str, float]:
    """Bytes of resident memory per service of each batch's copies (in a fresh process)."""
    with relaxed_gc(), asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        return runner.run(_weigh_running(batches, bare, Path(workdir)))


async def _weigh_running(
    batches: Sequence[_Copies], bare: Config, workdir: Path
) -> dict[str, float]:
    async with contextlib.AsyncExitStack() as running:

        async def start(services: Sequence[ServiceConfig], db: Path) -> None:
            config = bare.model_copy(
                update={
                    "services": tuple(services),
                    "storage": bare.storage.model_copy(update={"url": f"sqlite:///{db}"}),
                }
            )
            daemon = BenchDaemon(config, SqlStore(config.storage.url, bare.storage.history))
            await daemon.start()
            running.push_async_callback(daemon.stop)

        # A first daemon pays for what is made once a process (lazy imports, the store's
        # compiled statements); an empty one then weighs a daemon's own memory.
        await start([pickle.loads(b.originals[0]) for b in batches], workdir / "primer.db")
        gc.collect()
        before = rss_bytes()
        await start([], workdir / "empty.db")
        gc.collect()
        own = rss_bytes() - before
        weighed: dict[str, float] = {}
        for batch in batches:
            gc.collect()
            before = rss_bytes()
            await start(
                [
                    pickle.loads(batch.originals[i % len(batch.originals)]).model_copy(
                        update={"name": name}
                    )
                    for i, name in enumerate(batch.names)
                ],
                Path(batch.db),
            )
            gc.collect()
            weighed[batch.kind] = max(0, rss_bytes() - before - own) / len(batch.names)
        return weighed


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The measuring daemons' log below errors left out: a sampled service's state
    changes (a target that fails) would bury the command's output."""
    logger = logging.getLogger("pymon")
    level = logger.level
    logger.setLevel(max(logging.ERROR, logger.getEffectiveLevel()))
    try:
        yield
    finally:
        logger.setLevel(level)


def run_live(
    config: Config,
    kinds: Sequence[str],
    *,
    window: float,
    most: int,
    loop: LoopName,
    say: Progress,
) -> LiveRun:
    """Measure ``kinds`` (check types the config's enabled services use) live: the idle
    daemon, then each type on at most ``most`` of its services, then memory."""
    chosen = {
        kind: sample([s for s in config.services if s.enabled and s.type == kind], most)
        for kind in kinds
    }
    missing = [kind for kind, services in chosen.items() if not services]
    if missing:
        raise ValueError(f"no enabled service checks {', '.join(missing)}")
    history = config.storage.history
    with _quiet(), tempfile.TemporaryDirectory(prefix="pymon-capacity-") as tmp:
        workdir = Path(tmp)
        with relaxed_gc(), asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
            every = [s for services in chosen.values() for s in services]
            idle = runner.run(_idle_cpu(config, every, window, workdir, say))
            figures: dict[str, LiveFigures] = {}
            batches: list[_Copies] = []
            for kind, services in chosen.items():
                figures[kind], reached = runner.run(
                    _measure_type(config, kind, services, window, workdir, say)
                )
                batches.append(runner.run(_seed(kind, services, reached, workdir, history)))
        say(f"weighing memory on {COPIES:,} copies of each type's sample...")
        bare = derived_config(config, (), workdir / "none.db")
        # A fresh process: in this one, room the runs above freed would take the copies
        # in without its resident memory growing.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            memory = pool.submit(_weigh, batches, bare, loop, tmp).result()
    return LiveRun(idle, figures, memory)
