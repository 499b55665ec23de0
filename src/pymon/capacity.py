"""How much of this machine a config takes, and how far it can grow: ``pymon capacity``.

Pure arithmetic over three inputs: what the config demands (:func:`demand`: checks
per second of each check type), what a check of each type costs here (``Cost``,
measured by the command's calibration, with the ``Basis`` it rests on), and what the
machine allows (``Machine``, read from the system by :func:`read_machine`).
:func:`estimate` turns them into the limits and the first bottleneck, with the
advice that follows; :func:`caveats` says which costs to read with care
(docs/capacity.md explains each figure).
"""

from __future__ import annotations

import math
import os
import resource
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from pymon.config.schema import Config
from pymon.engine.rules import channels_for
from pymon.model import Status

__all__ = [
    "ROUGH",
    "SATURATION",
    "STORE_SHARE",
    "TIME_WAIT",
    "Basis",
    "Cost",
    "Demand",
    "Estimate",
    "Machine",
    "Outbox",
    "Pressure",
    "above_idle",
    "caveats",
    "demand",
    "estimate",
    "outbox",
    "read_machine",
]

SATURATION: Final = 0.85
"""The share of one core one pymon process can use before its checks start late.

One process runs its checks on one event loop (the rest of its threads wait for
the same interpreter lock): lateness grew past 86-87 % of a core in every type
measured (docs/performance.md, "One type at a time", "A lean HTTP/1.1 path")."""

STORE_SHARE: Final = 0.5
"""The share of its measured pace SQLite's writer is counted on for in a running
daemon, whose loop holds the interpreter lock most of the time the writer wants it."""

TIME_WAIT: Final = 60.0
"""Seconds a closed connection keeps its local port on Linux (TIME_WAIT)."""

ROUGH: Final = 20
"""A cost measured on fewer checks than this is rough: one slow or odd check moves it."""

# Types whose checks close their connection first, so that its local port waits in
# TIME_WAIT on this machine (an http or smtp server closes first: the wait is its).
_CLOSES_FIRST: Final = frozenset({"tcp", "tls"})
_LOOPBACK: Final = ("127.", "::1", "localhost")
# File descriptors a check in flight holds: a socket, a plugin's three pipes.
_FDS_PER_CHECK: Final = {"plugin": 3}
# A service's timeout when it sets none (the config's default).
_DEFAULT_TIMEOUT: Final = 10.0
# What the daemon itself keeps open (store, web, logs, the loop) beside its checks.
_BASE_FDS: Final = 64


@dataclass(frozen=True, slots=True)
class Demand:
    """What a config asks of one check type: services, checks per second, and how long
    a check may hang (its services' timeouts, averaged weighted by their checks)."""

    kind: str
    services: int
    per_second: float
    # New connections per second to the busiest (host, port), of the checks that close
    # first: all of them, and those to hosts other than this machine's loopback.
    busiest: float = 0.0
    busiest_remote: float = 0.0
    timeout: float = _DEFAULT_TIMEOUT

    @property
    def mean_interval(self) -> float:
        """The services' interval on average (weighted by their checks)."""
        return self.services / self.per_second if self.per_second else math.inf


@dataclass(frozen=True, slots=True)
class Cost:
    """What one check of a type costs here, measured: pymon's CPU seconds per check
    (all its threads), the children's (a plugin's process), and memory per service."""

    kind: str
    cpu: float
    children: float = 0.0
    memory: float = 0.0  # bytes per service
    duration: float = 0.0  # seconds a check takes, start to result (median)


@dataclass(frozen=True, slots=True)
class Basis:
    """What a type's measured cost rests on: the checks measured, how many of them
    failed (not ok or warn), and, measured live, the services sampled and the most
    common failure's message."""

    checks: int
    failed: int = 0
    sampled: int = 0
    failure: str = ""

    @property
    def rough(self) -> bool:
        """Whether too few checks were measured for the figure to be more than a hint."""
        return self.checks < ROUGH

    @property
    def all_failed(self) -> bool:
        """Whether every check measured failed: the cost is that of failing checks."""
        return self.checks > 0 and self.failed == self.checks


def above_idle(cpu: float, idle: float, checks: int) -> float:
    """CPU seconds per check: ``cpu`` over a window less ``idle``, what a daemon with
    nothing due took over the same window (its timers, its writer's ticks), shared by
    the ``checks`` measured; never below zero (0 without checks)."""
    return max(0.0, cpu - idle) / checks if checks else 0.0


def caveats(bases: Mapping[str, Basis]) -> list[str]:
    """What to read with care in the costs measured, the gravest first: each type
    whose every check failed, whose checks partly failed, whose figure rests on too
    few checks."""
    every, some, rough = [], [], []
    for kind, basis in sorted(bases.items()):
        said = f": {basis.failure}" if basis.failure else ""
        if basis.all_failed:
            every.append(
                f"EVERY {kind} check failed ({basis.failed:,} of {basis.checks:,}{said}):"
                f" its cost is that of a failing check, not of a {kind} check that answers"
            )
        elif basis.failed:
            some.append(f"{kind}: {basis.failed:,} of {basis.checks:,} checks failed{said}")
        if basis.rough:
            rough.append(
                f"{kind}: the cost rests on {basis.checks:,} check(s), fewer than {ROUGH}:"
                " a rough figure (measure longer with --seconds, or sample more with --sample)"
            )
    return every + some + rough


@dataclass(frozen=True, slots=True)
class Machine:
    """What the system allows: cores, open files, local ports and their reuse."""

    cores: int
    open_files: int
    ports: int  # local ports for outgoing connections (net.ipv4.ip_local_port_range)
    # net.ipv4.tcp_tw_reuse: 1 reuses a port in TIME_WAIT, 2 (the default) only
    # towards loopback addresses, 0 never.
    reuse_time_wait: int
    memory: int  # bytes of RAM


@dataclass(frozen=True, slots=True)
class Pressure:
    """One resource: how much the config uses of what there is (1.0 = all of it)."""

    resource: str
    used: float
    detail: str
    advice: str = ""
    # The part of ``used`` that does not grow with the config (a daemon's own files).
    fixed: float = 0.0

    @property
    def growth(self) -> float:
        """How many times the config's use of this resource could grow before it runs out."""
        grows = self.used - self.fixed
        return (1 - self.fixed) / grows if grows > 0 else math.inf


@dataclass(slots=True)
class Estimate:
    """The limits of one config on one machine (see the module's docstring)."""

    workers: int
    per_second: float  # checks per second the config demands
    cores: float  # cores pymon (and its plugins) will use for them
    share: float  # of the machine's cores
    headroom: float  # how many times the config could grow, as it is mixed
    most_services: dict[str, int]  # per type, alone, at its own mean interval
    memory: float  # bytes for the config's services
    pressures: list[Pressure] = field(default_factory=list)

    @property
    def bottleneck(self) -> Pressure:
        """The first resource to run out as the config grows (of those that never
        run out, or run out together, the one used most)."""
        return min(self.pressures, key=lambda p: (p.growth, -p.used))


def demand(config: Config) -> dict[str, Demand]:
    """Checks per second of each check type the config's enabled services use."""
    services: dict[str, int] = defaultdict(int)
    rates: dict[str, float] = defaultdict(float)
    hanging: dict[str, float] = defaultdict(float)  # Σ rate x timeout
    towards: dict[str, dict[tuple[str, int], float]] = defaultdict(lambda: defaultdict(float))
    for service in config.services:
        # A service with locations checks nothing itself: its location checks do,
        # each counted here as the check it is (wherever its location runs it).
        if not service.enabled or service.locations:
            continue
        services[service.type] += 1
        # A passive heartbeat waits for pushes: it runs no check of its own.
        if service.type == "heartbeat":
            continue
        rates[service.type] += 1 / service.interval
        hanging[service.type] += service.timeout / service.interval
        where = _destination(service.check)
        if where is not None and service.type in _CLOSES_FIRST:
            towards[service.type][where] += 1 / service.interval
    return {
        kind: Demand(
            kind,
            count,
            rates[kind],
            max(towards[kind].values(), default=0.0),
            max(
                (r for (host, _), r in towards[kind].items() if not host.startswith(_LOOPBACK)),
                default=0.0,
            ),
            round(hanging[kind] / rates[kind], 6) if rates[kind] else _DEFAULT_TIMEOUT,
        )
        for kind, count in services.items()
    }


def _destination(spec: object) -> tuple[str, int] | None:
    """The (host, port) a check connects to, when its spec says."""
    host, port = getattr(spec, "host", None), getattr(spec, "port", None)
    if isinstance(host, str) and isinstance(port, int):
        return host, port
    url = getattr(spec, "url", None)
    if isinstance(url, str):
        parts = urlsplit(url)
        default = 443 if parts.scheme == "https" else 80
        try:
            return parts.hostname or "", parts.port or default
        except ValueError:
            return None
    return None


@dataclass(frozen=True, slots=True)
class Outbox:
    """The notices an outage of every service at once would queue (a service whose
    parent is in the config holds its own: one root cause, one notice), and how
    many the outbox delivers at a time."""

    notices: int
    concurrency: int

    @property
    def drain(self) -> float:
        """Seconds until the last leaves, at a second per delivery (an SMTP server or
        webhook answering in ms drains it faster; one timing out, slower)."""
        return self.notices / self.concurrency


def outbox(config: Config) -> Outbox:
    """What an outage of every enabled service (each parent, its children held) queues."""
    names = {s.name for s in config.services if s.enabled}
    policy = config.notifications
    notices = 0
    for service in config.services:
        if not service.enabled or any(p in names for p in service.depends_on):
            continue
        for channel in channels_for(service, policy, Status.ERROR):
            spec = policy.channels.get(channel)
            notices += spec is not None and spec.type != "log"
    return Outbox(notices, policy.delivery.concurrency)


def estimate(
    demands: Mapping[str, Demand],
    costs: Mapping[str, Cost],
    machine: Machine,
    *,
    workers: int = 1,
    concurrency: int = 1000,
    store_pace: float | None = None,
) -> Estimate:
    """The limits of ``demands`` at ``costs`` on ``machine`` with ``workers`` processes.

    Every type in ``demands`` that runs checks needs a cost (KeyError otherwise).
    ``store_pace`` is the checks a second one SQLite writer recorded here (None: not
    measured, as for PostgreSQL, which takes a writer per node).
    """
    running = [d for d in demands.values() if d.per_second > 0]
    loop = sum(d.per_second * costs[d.kind].cpu for d in running)
    children = sum(d.per_second * costs[d.kind].children for d in running)
    usable = SATURATION * workers
    cores = loop + children
    most = {
        d.kind: int(usable / costs[d.kind].cpu * d.mean_interval)
        for d in running
        if costs[d.kind].cpu > 0
    }
    services = sum(d.services for d in demands.values())
    memory = sum(d.services * costs[d.kind].memory for d in demands.values() if d.kind in costs)
    pressures = [
        Pressure(
            "loop CPU",
            loop / usable if usable else math.inf,
            f"{loop:.2f} of the {usable:.2f} cores {workers} worker(s) can use "
            f"({SATURATION:.0%} of one each)",
            _workers_advice(loop, workers, machine),
        ),
        Pressure(
            "machine CPU",
            cores / machine.cores,
            f"{cores:.2f} of {machine.cores} cores, plugins' processes included",
            "fewer or cheaper checks, or a second machine (a cluster on PostgreSQL)",
        ),
        _open_files(running, costs, machine, concurrency, workers),
        Pressure(
            "memory",
            memory / machine.memory if machine.memory else 0.0,
            f"{memory / 2**20:,.0f} MiB for {services:,} services "
            f"of {machine.memory / 2**30:,.1f} GiB",
            "more memory, or the services over several machines",
        ),
    ]
    pressures += _local_ports(running, machine)
    if store_pace:
        pressures.append(_store_writes(sum(d.per_second for d in running), store_pace, workers))
    headroom = min((p.growth for p in pressures), default=math.inf)
    return Estimate(
        workers,
        sum(d.per_second for d in running),
        cores,
        cores / machine.cores,
        headroom,
        most,
        memory,
        pressures,
    )


def _workers_advice(loop: float, workers: int, machine: Machine) -> str:
    needed = math.ceil(loop / SATURATION) if loop else 1
    if needed <= workers:
        return ""
    if needed <= machine.cores:
        return f"run --workers {needed} (scheduler.workers: {needed})"
    return (
        f"needs {needed} workers and this machine has {machine.cores} cores: "
        "several machines in a cluster (PostgreSQL), or longer intervals"
    )


def _open_files(
    running: Sequence[Demand],
    costs: Mapping[str, Cost],
    machine: Machine,
    concurrency: int,
    workers: int,
) -> Pressure:
    """Checks in flight hold files: on average rate x duration; at worst every check
    hangs until its timeout, rate x timeout of each type in flight, as many as
    ``concurrency`` lets one worker run (the types that hold most files first)."""
    flight = sum(
        d.per_second * costs[d.kind].duration * _FDS_PER_CHECK.get(d.kind, 1) for d in running
    )
    slots, worst = float(concurrency), 0.0
    for d in sorted(running, key=lambda d: -_FDS_PER_CHECK.get(d.kind, 1)):
        hanging = min(slots, d.per_second * d.timeout / workers)
        worst += hanging * _FDS_PER_CHECK.get(d.kind, 1)
        slots -= hanging
    in_flight = concurrency - slots
    per_worker = max(flight / workers, worst) + _BASE_FDS
    # However the config grows, a worker never has more than ``concurrency`` checks
    # in flight: when even that fits the limit, none of this use grows toward it.
    most = concurrency * max((_FDS_PER_CHECK.get(d.kind, 1) for d in running), default=1)
    bounded = most + _BASE_FDS <= machine.open_files
    return Pressure(
        "open files",
        per_worker / machine.open_files,
        f"up to {per_worker:,.0f} per worker (at worst {in_flight:,.0f} checks hanging"
        f" until their timeout, of scheduler.concurrency {concurrency}) of a limit of"
        f" {machine.open_files:,} (ulimit -n)",
        f"ulimit -n {max(4096, int(per_worker * 2))} (or LimitNOFILE= in the unit)",
        fixed=(per_worker if bounded else _BASE_FDS) / machine.open_files,
    )


def _store_writes(per_second: float, pace: float, workers: int) -> Pressure:
    """Every check writes a state and a result row; one SQLite file has one writer at a
    time, whatever the workers, and its pace was measured alone, so the daemon's busy
    interpreter leaves it half of that (:data:`STORE_SHARE`)."""
    usable = pace * STORE_SHARE
    return Pressure(
        "store writes",
        per_second / usable,
        f"{per_second:,.0f} checks/s to record, of the {usable:,.0f} SQLite's one writer "
        f"keeps up with here ({STORE_SHARE:.0%} of the {pace:,.0f} it wrote alone)"
        + (f", shared by {workers} workers" if workers > 1 else ""),
        "storage on PostgreSQL (a writer per node), or longer intervals",
    )


def _local_ports(running: Sequence[Demand], machine: Machine) -> list[Pressure]:
    """A connection this machine closes keeps its local port for TIME_WAIT; towards one
    destination only ``ports / TIME_WAIT`` new connections a second find a free one."""
    if machine.reuse_time_wait == 1:
        return []
    loopback_too = machine.reuse_time_wait == 0
    per_second = max(
        (d.busiest if loopback_too else d.busiest_remote for d in running), default=0.0
    )
    if not per_second:
        return []
    limit = machine.ports / TIME_WAIT
    return [
        Pressure(
            "local ports",
            per_second / limit,
            f"{per_second:,.0f} new connections/s to the busiest host and port, of "
            f"{limit:,.0f} that {machine.ports:,} local ports allow ({TIME_WAIT:g} s "
            "in TIME_WAIT each)",
            "sysctl net.ipv4.tcp_tw_reuse=1, or widen net.ipv4.ip_local_port_range",
        )
    ]


def read_machine(proc: Path = Path("/proc")) -> Machine:
    """This machine's cores, open-file limit, local port range, TIME_WAIT reuse and RAM."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low, high = 32768, 60999  # Linux's default range
    text = _read(proc / "sys/net/ipv4/ip_local_port_range")
    if text is not None and len(text.split()) == 2:
        low, high = (int(x) for x in text.split())
    reuse = _read(proc / "sys/net/ipv4/tcp_tw_reuse")
    memory = 0
    meminfo = _read(proc / "meminfo") or ""
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            memory = int(line.split()[1]) * 1024
    return Machine(
        cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1,
        open_files=soft if soft != resource.RLIM_INFINITY else 1 << 20,
        ports=high - low + 1,
        reuse_time_wait=int(reuse) if reuse is not None and reuse.strip().isdigit() else 2,
        memory=memory,
    )


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None
