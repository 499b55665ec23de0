"""The Store protocol: what the engine needs from persistence, whatever the backend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pymon.model import Event, Heartbeat, Incident, Notice, ServiceState, Status
from pymon.uptime import Bucket, Delta, Totals

__all__ = [
    "CommandRecord",
    "Delivery",
    "Fence",
    "Lease",
    "NodeRecord",
    "Outcome",
    "ResultRecord",
    "Store",
]


@dataclass(frozen=True, slots=True)
class ResultRecord:
    """One check run as kept in a service's bounded history.

    ``status`` is the final status (after thresholds); ``lateness`` is how long after
    its due time the run started, in seconds.
    """

    service: str
    seq: int
    status: Status
    message: str
    metrics: Mapping[str, float]
    started_at: float
    duration: float
    lateness: float


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notice to one channel in the outbox, with how its delivery is going.

    ``attempts`` counts attempts started; ``next_at`` is when it is due (or, while an
    attempt runs, when its lease ends); ``error`` is the last failure's reason.
    """

    notice: Notice
    channel: str
    attempts: int
    next_at: float
    delivered_at: float | None = None
    failed_at: float | None = None
    error: str | None = None

    @property
    def state(self) -> str:
        """``delivered``, ``failed`` (given up) or ``pending``."""
        if self.delivered_at is not None:
            return "delivered"
        return "failed" if self.failed_at is not None else "pending"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt at a delivery ended, to be recorded: delivered (no ``error``),
    to be retried at ``retry_at``, or (an error and no ``retry_at``) given up."""

    key: str
    channel: str
    at: float
    error: str | None = None
    retry_at: float | None = None


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """One node of a cluster as its heartbeat row says (docs/cluster.md).

    ``heartbeat_at`` is the last renewal, ``stopped_at`` set when it stopped cleanly;
    ``checks_per_s`` its rate over the last heartbeat; ``web`` the address its
    dashboard listens on (empty when off).
    """

    name: str
    host: str
    pid: int
    location: str
    config_checksum: str
    started_at: float
    heartbeat_at: float
    checks_per_s: float = 0.0
    web: str = ""
    stopped_at: float | None = None


@dataclass(frozen=True, slots=True)
class Lease:
    """Who holds a shard, until when, and its epoch (rises with every change of owner)."""

    shard: int
    owner: str | None
    until: float
    epoch: int


@dataclass(frozen=True, slots=True)
class Fence:
    """What a node's write must still hold to land: the epoch of every shard it
    writes for, and which shard each service is in."""

    owner: str
    epochs: Mapping[int, int]
    shard_of: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """A command for a service another node runs, as the commands table holds it.

    ``kind`` is ``ack``, ``unack`` or ``run_now``; ``arguments`` its JSON arguments;
    ``origin`` the node that sent it. The owner sets ``taken_by``/``taken_at`` when it
    takes it, then ``done_at`` with ``answer`` (JSON) or ``error`` and ``error_kind``
    (``unknown``, ``refused``, or ``expired`` when the sender gave up waiting first).
    """

    id: str
    service: str
    kind: str
    arguments: Mapping[str, Any]
    origin: str
    created_at: float
    taken_by: str | None = None
    taken_at: float | None = None
    done_at: float | None = None
    answer: Mapping[str, Any] | None = None
    error: str | None = None
    error_kind: str | None = None


class Store(Protocol):
    """Durable state, bounded result history and events.

    ``write`` is called with batches (the engine batches; a store never sees one
    call per check). Within one ``write`` everything lands in one transaction.
    """

    async def open(self) -> None:
        """Connect and create the schema if it is missing."""
        ...

    async def close(self) -> None:
        """Release connections; pending writes were already awaited by the caller."""
        ...

    async def load_states(self, names: Sequence[str] | None = None) -> dict[str, ServiceState]:
        """The last persisted state of every service (of ``names`` only, if given),
        keyed by name."""
        ...

    async def write(
        self,
        states: Sequence[ServiceState],
        results: Sequence[ResultRecord],
        events: Sequence[Event],
        incidents: Sequence[Incident] = (),
        notices: Sequence[Notice] = (),
        rollups: Sequence[Delta] = (),
        *,
        fence: Fence | None = None,
    ) -> None:
        """Persist a batch atomically: upsert states and incidents, add results, events
        and notices (a notice whose key is already stored is left alone), and add the
        rollups' deltas to the stored buckets (docs/uptime.md)."""
        ...

    async def rollups(
        self, names: Sequence[str] | None, since: float, until: float, width: int = 3600
    ) -> list[Bucket]:
        """Stored buckets of width ``width`` of ``names`` (every service when None)
        that overlap ``since``..``until``, by service then start."""
        ...

    async def totals(
        self,
        names: Sequence[str] | None,
        since: float,
        until: float,
        width: int = 3600,
        *,
        now: float | None = None,
    ) -> dict[str, Totals]:
        """The stored buckets :meth:`rollups` would answer, added up per service (each
        one's time scaled to its share inside ``since``..``until``, ending at ``now``
        when given, as ``summarize`` scales it); services with none are left out."""
        ...

    async def incidents_between(
        self, names: Sequence[str] | None, since: float, until: float
    ) -> list[Incident]:
        """Stored incidents of ``names`` (every service when None) open at some time
        within ``since``..``until``, oldest first."""
        ...

    async def prune_rollups(self, before: float, limit: int = 10_000) -> int:
        """Delete at most ``limit`` buckets that ended before ``before``; how many."""
        ...

    async def open_incidents(self) -> dict[str, Incident]:
        """The open incident of every service that has one, keyed by service name."""
        ...

    async def incidents(self, service: str | None = None, limit: int = 100) -> list[Incident]:
        """The newest ``limit`` incidents (of one service if given), newest first."""
        ...

    async def notices(self, limit: int = 100) -> list[Notice]:
        """The newest ``limit`` notices, newest first."""
        ...

    async def due_deliveries(self, now: float, limit: int = 100) -> list[Delivery]:
        """Pending deliveries whose ``next_at`` has come, oldest first."""
        ...

    async def next_delivery_at(self) -> float | None:
        """When the earliest pending delivery is due (None: nothing pending)."""
        ...

    async def claim_delivery(
        self, key: str, channel: str, seen: float, until: float, owner: str = ""
    ) -> bool:
        """Take a pending delivery still due at ``seen`` for one attempt, leased to ``until``
        by ``owner``; False when another sender took it first."""
        ...

    async def release_claims(self, owner: str, now: float) -> int:
        """Make the leases ``owner`` holds due now (its earlier life died mid-send)."""
        ...

    async def finish_delivery(
        self,
        key: str,
        channel: str,
        *,
        at: float,
        error: str | None = None,
        retry_at: float | None = None,
    ) -> None:
        """Record an attempt: delivered, retry at ``retry_at``, or given up (error only)."""
        ...

    async def finish_deliveries(self, outcomes: Sequence[Outcome]) -> None:
        """Record several attempts' ends in one transaction: all of them or none."""
        ...

    async def deliveries(
        self,
        *,
        state: str | None = None,
        service: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Delivery]:
        """Deliveries newest first, filtered by state (pending, delivered, failed) and service."""
        ...

    async def keep_meta(self, key: str, value: str) -> str:
        """Store ``value`` under ``key`` unless one is stored; return the stored one."""
        ...

    async def history(self, service: str, limit: int = 100) -> list[ResultRecord]:
        """The newest ``limit`` results of ``service``, newest first."""
        ...

    async def events(self, limit: int = 100, service: str | None = None) -> list[Event]:
        """The newest ``limit`` events (of one service if given), newest first."""
        ...

    async def forget(self, names: Sequence[str]) -> None:
        """Drop the state, history and last heartbeat of services that left the config.

        Events stay: they are the record of what happened.
        """
        ...

    async def save_window(self, window_id: str, window: Mapping[str, Any]) -> None:
        """Persist a maintenance window added at run time (its JSON form), by id."""
        ...

    async def delete_window(self, window_id: str) -> bool:
        """Remove a run-time maintenance window; False when there was none with that id."""
        ...

    async def load_windows(self) -> dict[str, dict[str, Any]]:
        """Every run-time maintenance window (JSON form), keyed by id."""
        ...

    async def save_heartbeat(self, beat: Heartbeat) -> None:
        """Persist a job's push at once (a push is rare and must survive a crash)."""
        ...

    async def load_heartbeats(self) -> dict[str, Heartbeat]:
        """The last push of every heartbeat service, keyed by service name."""
        ...

    async def add_shards(self, count: int) -> None:
        """Create shards 0 to ``count - 1`` where missing."""
        ...

    async def node_stopped(self, name: str, at: float) -> None:
        """Mark node ``name`` as stopped cleanly at ``at``."""
        ...

    async def nodes(self) -> list[NodeRecord]:
        """Every node that ever beat on this store."""
        ...

    async def leases(self) -> list[Lease]:
        """Every shard's lease, by shard."""
        ...

    async def claim_shards(
        self, owner: str, shards: Sequence[int], now: float, until: float
    ) -> dict[int, int]:
        """Take the free or lapsed ones of ``shards``; their new epochs, by shard."""
        ...

    async def keep_leases(self, node: NodeRecord, until: float) -> dict[int, int]:
        """Write ``node``'s heartbeat row and extend its leases to ``until``, in one
        transaction; the epoch of each shard it holds, by shard."""
        ...

    async def release_shards(self, owner: str, shards: Sequence[int]) -> None:
        """Give ``shards`` up at once."""
        ...

    async def send_command(
        self, service: str, kind: str, arguments: Mapping[str, Any], origin: str, at: float
    ) -> str:
        """Queue a command for the node that runs ``service``; its id."""
        ...

    async def open_commands(self, since: float, limit: int) -> list[CommandRecord]:
        """Commands nobody took yet, sent at or after ``since``, oldest first."""
        ...

    async def take_commands(self, owner: str, ids: Sequence[str], at: float) -> list[CommandRecord]:
        """Take those of ``ids`` nobody took yet for ``owner``; the ones it got."""
        ...

    async def finish_command(
        self,
        command_id: str,
        at: float,
        *,
        answer: Mapping[str, Any] | None = None,
        error: str | None = None,
        error_kind: str | None = None,
    ) -> None:
        """Record a taken command's answer (or error)."""
        ...

    async def withdraw_command(self, command_id: str, at: float) -> bool:
        """Close a command nobody took yet (its sender stopped waiting); False when
        it was taken already."""
        ...

    async def command(self, command_id: str) -> CommandRecord | None:
        """One command as it stands, None when there is none with that id."""
        ...

    async def prune_commands(self, before: float) -> int:
        """Delete the commands sent before ``before``; how many."""
        ...

    async def change_mark(self) -> int:
        """A number that moves whenever any node committed a transition."""
        ...
