"""The engine's one port: everything the outside may ask of the engine.

The web (API, pages, live stream, metrics), the notifier and its acknowledgement
server, and whatever triggers a reload talk to the engine through
:class:`EnginePort` alone: **queries** that never write (a read never flushes the
store's writer; what is not written yet is answered from memory) and **commands**
that change something and answer with what they did.

Queries that may need the store are ``async``: a node answers for its own
services from memory, and for the services another node of its cluster runs from
the store (:mod:`pymon.engine.peers`), behind the same signatures. A command on a
service raises :class:`~pymon.errors.UnknownService` when there is no such
service and :class:`~pymon.errors.CommandRefused` when the service cannot do it
now (nothing to acknowledge, disabled, a window from the config...).

The engine's implementation is :class:`pymon.engine.runtime.Runtime`; tests of
the web use a fake in memory that decides through the same pure rules
(``tests/support/port.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from pymon.config.schema import Config, ServiceConfig
from pymon.config.windows import MaintenanceWindow
from pymon.engine.bus import Subscription
from pymon.events import BusItem
from pymon.locations import Combined, LocationResult
from pymon.model import Event, Incident, ReloadResult, ServiceState, Status
from pymon.store.base import Delivery, ResultRecord
from pymon.uptime import HOUR, Bucket, Totals

__all__ = [
    "AckFigures",
    "ClusterFigures",
    "EnginePort",
    "Health",
    "NodeView",
    "NoticeDesk",
    "OutboxFigures",
    "Reload",
    "ReloadStatus",
    "SchedulerFigures",
    "ServiceView",
    "StoreFigures",
    "WindowView",
    "count_statuses",
]


def count_statuses(states: Iterable[ServiceState]) -> dict[str, int]:
    """How many of ``states`` are in each status, every status named (zeros included)."""
    counted = Counter(state.status for state in states)
    return {status.value: counted.get(status, 0) for status in Status}


@dataclass(frozen=True, slots=True)
class ServiceView:
    """One service as the outside sees it: its settings, its state, its open incident.

    ``scheduled`` says whether its check runs (enabled, and on the schedule), so a
    caller can tell before asking for a run. ``node`` is the node of the cluster that
    runs it (None while nobody holds its shard).
    """

    config: ServiceConfig
    state: ServiceState
    incident: Incident | None = None
    scheduled: bool = True
    node: str | None = None
    #: A service with ``locations``: each listed location's latest result (a location
    #: with none yet is missing), and what they decide together now.
    locations: Mapping[str, LocationResult] = field(default_factory=dict)
    combined: Combined | None = None

    @property
    def name(self) -> str:
        """The service's name."""
        return self.config.name

    @property
    def partial(self) -> bool:
        """Some location sees a problem that the quorum does not confirm."""
        return self.combined is not None and self.combined.partial

    @property
    def partial_locations(self) -> tuple[str, ...]:
        """The locations seeing a problem the quorum does not confirm, sorted."""
        return self.combined.partial_locations if self.combined is not None else ()


@dataclass(frozen=True, slots=True)
class NodeView:
    """One node of the cluster as its heartbeat row and the shards table say.

    ``alive``: it beat within the lease and did not stop; ``shards``: how many shards
    it holds a lease on now; ``heartbeat_age``: seconds since its last heartbeat.
    """

    name: str
    host: str
    pid: int
    location: str
    alive: bool
    shards: int
    heartbeat_age: float
    config_checksum: str
    checks_per_s: float


@dataclass(frozen=True, slots=True)
class WindowView:
    """A maintenance window and where it comes from: the config, or added at run time
    (``api``: through the API, a page or a reply by mail; those can be removed)."""

    window: MaintenanceWindow
    source: Literal["config", "api"]


@dataclass(frozen=True, slots=True)
class SchedulerFigures:
    """The scheduler since start: runs, skipped runs, checks in flight, lateness."""

    runs: int = 0
    skipped: int = 0
    in_flight: int = 0
    lateness_p50: float = 0.0
    lateness_p99: float = 0.0


@dataclass(frozen=True, slots=True)
class ClusterFigures:
    """This node in its cluster: its name, the shards it holds, why it holds none
    though it could (its config differs), and the last heartbeat's failure."""

    node: str = ""
    shards: int = 0
    problem: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StoreFigures:
    """The store's writer: writes waiting, flushes done, flushes failed."""

    pending: int = 0
    flushes: int = 0
    failures: int = 0


@dataclass(frozen=True, slots=True)
class OutboxFigures:
    """The notice outbox since start."""

    sent: int = 0
    failed_attempts: int = 0
    gave_up: int = 0
    in_flight: int = 0


@dataclass(frozen=True, slots=True)
class AckFigures:
    """The acknowledgement server: its port and what it did with the replies."""

    port: int | None = None
    accepted: int = 0
    refused: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class ReloadStatus:
    """The last reload: whether it applied, when, from what, and why not."""

    ok: bool | None = None
    at: float | None = None
    source: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Health:
    """The figures ``/healthz``, the health page and ``/metrics`` show."""

    started_at: float
    services: int
    scheduler: SchedulerFigures = SchedulerFigures()
    store: StoreFigures = StoreFigures()
    notifications: OutboxFigures = OutboxFigures()
    acks: AckFigures | None = None
    reload: ReloadStatus = ReloadStatus()
    cluster: ClusterFigures = ClusterFigures()
    #: Typed events published since start, by type label (``check_completed``...).
    events: Mapping[str, int] = field(default_factory=dict)


class EnginePort(Protocol):
    """All the outside may ask of the engine: queries, then commands."""

    # -- queries -----------------------------------------------------------------

    @property
    def config(self) -> Config:
        """The config the engine runs now (replaced whole by a reload)."""
        ...

    def now(self) -> float:
        """The engine's clock (Unix time): what "now" means for windows and expiries."""
        ...

    async def services(self) -> list[ServiceView]:
        """Every service with its state, in config order."""
        ...

    async def service(self, name: str) -> ServiceView | None:
        """One service, None when there is none of that name."""
        ...

    async def status_counts(self) -> dict[str, int]:
        """How many services are in each status (every status named, zeros included)."""
        ...

    async def history(self, name: str, limit: int) -> list[ResultRecord]:
        """The service's newest results, newest first (what is not written yet included)."""
        ...

    async def events(self, limit: int, service: str | None = None) -> list[Event]:
        """The newest transitions, newest first, of one service if given."""
        ...

    async def open_incidents(self) -> list[Incident]:
        """Every open incident."""
        ...

    async def deliveries(
        self,
        *,
        state: Literal["pending", "delivered", "failed"] | None = None,
        service: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Delivery]:
        """Notice deliveries, newest first (what the outbox has been given)."""
        ...

    async def rollups(
        self, names: Sequence[str] | None, since: float, until: float, width: int = HOUR
    ) -> list[Bucket]:
        """The hour (``width`` = 3600) or day (86400) buckets of ``names`` (every
        service when None) that overlap ``since``..``until``, by service then time
        (docs/uptime.md). What this node has not written yet is included."""
        ...

    async def totals(
        self,
        names: Sequence[str] | None,
        since: float,
        until: float,
        width: int = HOUR,
        *,
        now: float | None = None,
    ) -> dict[str, Totals]:
        """What :meth:`rollups` answers, added up per service (each bucket's time
        scaled to its share inside the window, ending at ``now`` when given, as
        ``summarize`` takes it), without a Bucket per stored row: for reports over
        many services, with :func:`pymon.uptime.total`. Services with no bucket are
        left out."""
        ...

    async def incidents_between(
        self, names: Sequence[str] | None, since: float, until: float
    ) -> list[Incident]:
        """Incidents of ``names`` (every service when None), open or closed, that
        overlap ``since``..``until``, oldest first."""
        ...

    async def nodes(self) -> list[NodeView]:
        """Every node of the cluster that ever beat on the store, by name."""
        ...

    def windows(self) -> list[WindowView]:
        """Every maintenance window: the config's, then those added at run time."""
        ...

    def health(self) -> Health:
        """Figures of the engine and its edges, read now."""
        ...

    def subscribe(self, maxsize: int) -> Subscription[BusItem]:
        """A bounded, droppable feed of what happens (events and state-change hints)."""
        ...

    async def secret(self, name: str) -> str:
        """A random key kept in the store under ``name``, made on first use (hex)."""
        ...

    # -- commands ----------------------------------------------------------------

    async def acknowledge(
        self, name: str, author: str, comment: str = "", expires: float | None = None
    ) -> Incident:
        """Acknowledge the service's open incident; durable before it returns."""
        ...

    async def unacknowledge(self, name: str, author: str) -> Incident:
        """Take the acknowledgement of the service's open incident back."""
        ...

    async def add_maintenance(self, window: MaintenanceWindow) -> MaintenanceWindow:
        """Add a window at run time (kept in the store); returns it with its id."""
        ...

    async def remove_maintenance(self, window_id: str) -> bool:
        """Remove a window added at run time; False when there is none with that id
        (:class:`~pymon.errors.CommandRefused` for a window of the config)."""
        ...

    async def run_now(self, name: str) -> None:
        """Run the service's check at once, outside its rhythm."""
        ...

    async def push_heartbeat(self, token: str, *, ok: bool, message: str) -> str | None:
        """Record a job's push; the service it belongs to, None for an unknown token."""
        ...

    async def reload(self, source: str) -> ReloadResult:
        """Read the config again and apply it when valid; else keep the running one."""
        ...


# -- what the engine asks of the outside (given by the composition root) ----------


class NoticeDesk(Protocol):
    """What the engine reads of the notification side: its figures, for health."""

    def outbox_figures(self) -> OutboxFigures:
        """The outbox's counters since start."""
        ...

    def ack_figures(self) -> AckFigures | None:
        """The acknowledgement server's counters, None when it does not run."""
        ...


#: Reads the config file again and applies it (the composition root's reloader).
Reload = Callable[[str], Awaitable[ReloadResult]]
