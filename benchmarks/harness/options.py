"""One benchmark point: :class:`BenchOptions`, what ``pymon bench`` was asked to run."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

__all__ = ["KINDS", "REFERENCE_SECONDS", "BenchOptions", "Kind", "LoopName"]

LoopName = Literal["asyncio", "uvloop"]

Kind = Literal["mixed", "tcp", "http", "ping", "dns", "plugin"]
"""What the services check: half tcp and half http (``mixed``), or one type only."""

KINDS: tuple[Kind, ...] = get_args(Kind)

# The kinds the reference phase has a bare operation for (reference.py).
_REFERENCE_KINDS = ("mixed", "tcp", "http")

# Services per target port and kind. One listening socket can queue ``BACKLOG``
# connections (targets.py); spreading keeps a short stall of the target from
# overflowing it.
SERVICES_PER_PORT = 1250
MAX_PORTS_PER_KIND = 8

# The reference phase's length by default (see reference.py).
REFERENCE_SECONDS = 4.0


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """One benchmark point.

    ``warmup`` defaults to two intervals: the first interval starts every service
    (their phases are spread over it), the second confirms their state (flap
    guard), so the window sees only steady-state runs. It must be at least one
    interval. ``concurrency`` None keeps the config default. ``workers`` above 1 runs
    that many daemons, each a worker process and a node of one cluster on the same
    SQLite file (as ``pymon run --workers N``), sharing the services by shards.
    ``kind`` is what the services check (:data:`Kind`). ``peers`` runs the same
    workload through the peer tools after pymon's point (``benchmarks/harness/peers``)
    against nginx, when installed; ``nginx`` serves pymon's http and tcp checks from
    nginx without the peers (a target process in Python takes half a core at 10,000
    connections a second, a share of a 2-core machine the checks then lack).
    """

    services: int = 10_000
    interval: float = 5.0
    duration: float = 60.0
    warmup: float | None = None
    concurrency: int | None = None
    timeout: float | None = None
    flush_interval: float | None = None
    loop: LoopName = "asyncio"
    ports_per_kind: int | None = None
    workdir: Path | None = None
    reference: float = REFERENCE_SECONDS
    workers: int = 1
    kind: Kind = "mixed"
    peers: bool = False
    nginx: bool = False

    def type_of(self, index: int) -> str:
        """The check type of service number ``index`` (mixed: tcp and http in turn)."""
        if self.kind == "mixed":
            return "tcp" if index % 2 == 0 else "http"
        return self.kind

    @property
    def by_type(self) -> dict[str, int]:
        """How many services check each type."""
        if self.kind == "mixed":
            return {"tcp": (self.services + 1) // 2, "http": self.services // 2}
        return {self.kind: self.services}

    @property
    def tcp_services(self) -> int:
        """How many of the services are tcp."""
        return self.by_type.get("tcp", 0)

    @property
    def http_services(self) -> int:
        """How many of the services are http."""
        return self.by_type.get("http", 0)

    def describe(self) -> str:
        """The services as the progress lines name them: ``10 tcp, 10 http``."""
        return ", ".join(f"{n} {kind}" for kind, n in self.by_type.items())

    @property
    def web_kind(self) -> bool:
        """Whether the services check http or tcp targets (nginx can stand in for them)."""
        return self.kind in _REFERENCE_KINDS

    @property
    def effective_reference(self) -> float:
        """Seconds of the reference phase: none for a type it has no bare operation for."""
        return self.reference if self.kind in _REFERENCE_KINDS else 0.0

    @property
    def effective_warmup(self) -> float:
        """The warm-up actually used (two intervals unless given)."""
        return self.warmup if self.warmup is not None else 2 * self.interval

    @property
    def effective_timeout(self) -> float:
        """Each check's timeout: the interval, capped at 10 s (the config default)."""
        return self.timeout if self.timeout is not None else min(10.0, self.interval)

    @property
    def effective_ports(self) -> int:
        """Listening ports per check kind on the target."""
        if self.ports_per_kind is not None:
            return self.ports_per_kind
        per_kind = max(self.tcp_services, self.http_services)
        return max(1, min(MAX_PORTS_PER_KIND, math.ceil(per_kind / SERVICES_PER_PORT)))

    def validate(self) -> None:
        """Raise ValueError naming the first option that cannot make a run."""
        if self.services < (2 if self.kind == "mixed" else 1):
            raise ValueError("services must be at least 2 (half tcp, half http)")
        if self.kind not in KINDS:
            raise ValueError(f"type must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.interval <= 0:
            raise ValueError("interval must be positive")
        if self.duration <= 0:
            raise ValueError("duration must be positive")
        if self.effective_warmup < self.interval:
            raise ValueError(
                f"warmup ({self.effective_warmup:g}s) must be at least one interval "
                f"({self.interval:g}s): until then not every service has run"
            )
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.ports_per_kind is not None and self.ports_per_kind < 1:
            raise ValueError("ports per kind must be at least 1")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.reference < 0:
            raise ValueError("reference must not be negative")
