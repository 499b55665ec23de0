"""The engine of one node: the services it runs, their states and incidents, and the
port the outside talks to.

:class:`Runtime` holds what the engine knows at run time (states, open incidents,
maintenance windows added at run time, the jobs' heartbeat pushes) and implements
:class:`~pymon.engine.ports.EnginePort`: its queries answer from memory (and from
the store for history, events and deliveries, with what the writer has not
written yet merged in, so a read never forces a write), its commands go through
the pure rules like a check's result does. Every decision of the rules is taken
whole by its :class:`~pymon.engine.book.ServiceBook`: kept in memory, queued in the
store's writer (one transaction with its notices), then published on the bus. A
reload reaches it through :func:`pymon.engine.reconcile.reconcile`, which uses the
service lifecycle methods (``adopt``, ``retire``, ``restart``, ``begin``...).

The runtime does not build its edges: the composition root (:mod:`pymon.daemon`)
gives it the store, the writer, the bus, the clock, the notifier's figures and
the function that reloads the config file.

It runs a little past the house's ~500 lines: it is the port's one implementation,
and every query and command of the port reads or changes the same state; the parts
that stand alone already live beside it (``book.py``, ``flags.py``, ``reconcile.py``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Literal

from pydantic import ValidationError

from pymon.checks import CheckContext, check_type, run_check
from pymon.checks.base import Resolver, SystemResolver
from pymon.checks.heartbeat import HeartbeatBoard, push_tokens
from pymon.checks.http import HttpSessions
from pymon.clock import Clock, SystemClock
from pymon.config.schema import Config, ServiceConfig
from pymon.config.windows import MaintenanceWindow
from pymon.engine import rules
from pymon.engine.board import LocationBoard
from pymon.engine.book import ServiceBook
from pymon.engine.bus import Bus, Subscription
from pymon.engine.flags import MaintenanceFlags
from pymon.engine.parents import ParentWatch
from pymon.engine.peers import Peers, Sighting
from pymon.engine.ports import (
    ClusterFigures,
    Health,
    NodeView,
    NoticeDesk,
    OutboxFigures,
    Reload,
    ReloadStatus,
    SchedulerFigures,
    ServiceView,
    StoreFigures,
    WindowView,
    count_statuses,
)
from pymon.engine.relay import Relay
from pymon.engine.scheduler import Scheduler
from pymon.errors import CommandRefused, UnknownService
from pymon.events import (
    BusItem,
    ConfigReloaded,
    ReloadFailed,
    StateChanged,
)
from pymon.locations import max_age, split
from pymon.model import (
    Ack,
    CheckResult,
    Event,
    EventKind,
    Heartbeat,
    Incident,
    Notice,
    NoticeKind,
    ReloadResult,
    ServiceState,
    Status,
)
from pymon.store.base import Delivery, ResultRecord, Store
from pymon.store.writer import BatchWriter
from pymon.uptime import HOUR, Bucket, Totals, gap_limit

__all__ = ["Runtime"]

log = logging.getLogger("pymon")


class Runtime:
    """One node's engine: call :meth:`start`, then :meth:`stop`; talk to it as an
    :class:`~pymon.engine.ports.EnginePort`."""

    def __init__(
        self,
        config: Config,
        *,
        store: Store,
        writer: BatchWriter,
        bus: Bus[BusItem] | None = None,
        clock: Clock | None = None,
        resolver: Resolver | None = None,
        reloader: Reload | None = None,
        notices: NoticeDesk | None = None,
        peers: Peers | None = None,
        relay: Relay | None = None,
    ) -> None:
        self._config = config
        self.clock = clock or SystemClock()
        self.resolver = resolver or SystemResolver()
        self.store = store
        self.writer = writer
        self.bus: Bus[BusItem] = bus if bus is not None else Bus()
        self._reloader = reloader
        self._notices = notices
        #: The other nodes' services (None: this node is alone and runs every one).
        self._peers = peers
        self.scheduler = Scheduler(
            self._run_service, concurrency=config.scheduler.concurrency, clock=self.clock
        )
        self.sessions = HttpSessions()
        self.configs: dict[str, ServiceConfig] = {s.name: s for s in config.services}
        self.book = ServiceBook(writer, self.bus, self._gap)
        self.adhoc_windows: dict[str, MaintenanceWindow] = {}
        self.heartbeats = HeartbeatBoard(
            self.clock.time(), push_tokens({s.name: s.check for s in config.services})
        )
        self.started_at = time.time()
        self.reload_status = ReloadStatus()
        self._maintenance = MaintenanceFlags(self.clock)
        self._tasks: list[asyncio.Task[None]] = []
        self._parents = ParentWatch(self.scheduler.run_now)
        #: Whether this node runs a service (its shard's lease is held); the daemon
        #: sets it from the cluster's membership.
        self.owns: Callable[[str], bool] = lambda name: True
        #: This node's place in the cluster, for the health figures (set by the daemon).
        self.cluster_figures: Callable[[], ClusterFigures] = ClusterFigures
        #: Sends commands for services another node runs to that node (None: one node).
        self.relay = relay
        self._located: list[str] = []
        # When this node began running each service with locations.
        self._begun: dict[str, float] = {}
        self._service_of: dict[str, str] = {}
        self._index_locations()
        self.board = LocationBoard(
            store,
            clock=self.clock,
            node=peers.node if peers is not None else None,
            local=self.states.get,
            running=self._running_located,
            wake=self._decide_now,
            peers=peers,
            delay=config.storage.flush_interval,
        )

    @property
    def states(self) -> dict[str, ServiceState]:
        """Every service's current state: the book's own mapping (never replaced)."""
        return self.book.states

    @property
    def incidents(self) -> dict[str, Incident]:
        """Every service's open incident: the book's own mapping (never replaced)."""
        return self.book.incidents

    # -- life ----------------------------------------------------------------------

    async def load(self) -> None:
        """Restore what the whole cluster shares from the store: pushes and run-time
        maintenance windows (a service's own state comes with it, :meth:`take`)."""
        self.heartbeats.restore((await self.store.load_heartbeats()).values())
        for window_id, data in (await self.store.load_windows()).items():
            try:
                self.adhoc_windows[window_id] = MaintenanceWindow.model_validate(data)
            except ValidationError as exc:
                log.error(
                    "maintenance window %s in the store is unusable, skipped: %s", window_id, exc
                )

    def start(self) -> None:
        """Start the scheduler and the maintenance sweeper (services join with :meth:`take`)."""
        self._tasks = [
            asyncio.create_task(self.scheduler.run(), name="scheduler"),
            asyncio.create_task(self._maintenance.sweep(self._flipped), name="maintenance"),
            asyncio.create_task(self.board.run(), name="locations"),
        ]

    async def take(self, names: Iterable[str]) -> int:
        """Run these services from now on (this node took their shards): each goes on
        from its last committed state and open incident, as after a restart; the
        number that the store remembered."""
        wanted = [n for n in names if n in self.configs]
        if not wanted:
            return 0
        restored = await self.store.load_states()
        incidents = await self.store.open_incidents()
        # Nothing awaits from here: a reload or another handover never sees half of it.
        fresh = [n for n in wanted if n in self.configs and n not in self.states]
        for name in fresh:
            if name in incidents:
                self.incidents[name] = incidents[name]
            self.begin(self.configs[name], restored.get(name))
        return sum(1 for name in fresh if name in restored)

    def drop(self, names: Iterable[str]) -> None:
        """Stop running these services, keeping what the store has of them (another
        node runs them now): no incident is closed, nothing is written."""
        for name in names:
            if name in self.states:
                self.scheduler.remove(name)
                self.book.drop(name)
                self.bus.publish(StateChanged(name))

    async def stop(self) -> None:
        """Stop checking; in-flight checks are cancelled, the shared HTTP session closed."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.sessions.close()

    # -- queries (EnginePort) --------------------------------------------------------

    @property
    def config(self) -> Config:
        """The config the engine runs now."""
        return self._config

    def now(self) -> float:
        """The engine's clock."""
        return self.clock.time()

    def _view(self, name: str) -> ServiceView | None:
        service = self.configs.get(name)
        state = self.states.get(name)
        if service is None or state is None:
            return None
        node = self._peers.node if self._peers is not None else None
        view = ServiceView(service, state, self.incidents.get(name), name in self.scheduler, node)
        return self._with_locations(view) if service.locations else view

    def _with_locations(
        self, view: ServiceView, seen: Sighting | None = None, slack: float = 0.0
    ) -> ServiceView:
        """``view`` with what each of its locations sees and what they decide now
        (``seen``: the store's copy, for a service another node runs)."""
        found = self.board.results(view.config, seen)
        decided = self.board.combined(view.config, found, self.clock.time(), slack, seen)
        return replace(view, locations=found, combined=decided)

    async def _others(self) -> Sighting | None:
        """What the store says of the services another node runs; None when this node
        runs every one (no store read then: the single node's hot path)."""
        if self._peers is None or all(name in self.states for name in self.configs):
            return None
        return await self._peers.sighting()

    def _their_view(self, name: str, seen: Sighting) -> ServiceView:
        """Service ``name`` as the store has it from the node that runs it (never
        checked yet: unknown)."""
        assert self._peers is not None
        service = self.configs[name]
        state = seen.states.get(name) or ServiceState(name)
        view = ServiceView(
            service,
            state,
            seen.incidents.get(name),
            service.enabled,
            self._peers.owner(name, seen),
        )
        if not service.locations:
            return view
        # The store's copy of the location checks may be as old as the peers' reads.
        return self._with_locations(view, seen, self._peers.max_age)

    async def services(self) -> list[ServiceView]:
        """Every service with its state, in config order: this node's from memory, the
        others' from the store (as of at most a second ago)."""
        seen = await self._others()
        views = []
        for name in self.configs:
            if name in self._service_of:
                continue  # a location check: shown with its service
            view = self._view(name)
            if view is None and seen is not None:
                view = self._their_view(name, seen)
            if view is not None:
                views.append(view)
        return views

    async def service(self, name: str) -> ServiceView | None:
        """One service, None when there is none of that name."""
        view = self._view(name)
        if view is not None or name not in self.configs or self._peers is None:
            return view
        return self._their_view(name, await self._peers.sighting())

    async def status_counts(self) -> dict[str, int]:
        """Services per status, from the states alone (the live stream asks it often)."""
        seen = await self._others()
        listed = [n for n in self.configs if n not in self._service_of]
        if seen is None:
            return count_statuses(self.states[n] for n in listed if n in self.states)
        return count_statuses(
            self.states.get(n) or seen.states.get(n) or ServiceState(n) for n in listed
        )

    async def history(self, name: str, limit: int) -> list[ResultRecord]:
        """The service's newest results, newest first, written or not (another node's
        service: what that node wrote)."""
        return await self.writer.history(name, limit)

    async def events(self, limit: int, service: str | None = None) -> list[Event]:
        """The newest transitions of every node, newest first, written or not."""
        return await self.writer.events(limit, service)

    async def open_incidents(self) -> list[Incident]:
        """Every open incident: this node's from memory, the others' from the store."""
        mine = [i for i in self.incidents.values() if i.open and i.service not in self._service_of]
        seen = await self._others()
        if seen is None:
            return mine
        theirs = [
            i
            for name, i in seen.incidents.items()
            if i.open
            and name in self.configs
            and name not in self.states
            and name not in self._service_of
        ]
        return mine + theirs

    async def rollups(
        self, names: Sequence[str] | None, since: float, until: float, width: int = HOUR
    ) -> list[Bucket]:
        """Buckets of ``names`` overlapping the window: the store's (every node's)
        merged with what this node's writer has not written yet."""
        return await self.writer.rollups(names, since, until, width)

    async def totals(
        self,
        names: Sequence[str] | None,
        since: float,
        until: float,
        width: int = HOUR,
        *,
        now: float | None = None,
    ) -> dict[str, Totals]:
        """The buckets of :meth:`rollups` added up per service, mostly in the database."""
        return await self.writer.totals(names, since, until, width, now=now)

    async def incidents_between(
        self, names: Sequence[str] | None, since: float, until: float
    ) -> list[Incident]:
        """Incidents of ``names`` open at some time within the window, oldest first:
        the store's, then what the writer holds, then the open ones in memory (the
        newest word on each id wins)."""
        wanted = None if names is None else set(names)
        found = {i.id: i for i in await self.store.incidents_between(names, since, until)}
        for incident in (*self.writer.unwritten_incidents(), *self.incidents.values()):
            if wanted is None or incident.service in wanted:
                found[incident.id] = incident
        return sorted(
            (
                i
                for i in found.values()
                if i.opened_at < until and (i.closed_at is None or i.closed_at > since)
            ),
            key=lambda i: (i.opened_at, i.id),
        )

    async def nodes(self) -> list[NodeView]:
        """Every node of the cluster, by name (none without a cluster's view)."""
        return [] if self._peers is None else await self._peers.nodes()

    async def deliveries(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        state: Literal["pending", "delivered", "failed"] | None = None,
        service: str | None = None,
    ) -> list[Delivery]:
        """Notice deliveries from the store, newest first (the outbox sends only those)."""
        return await self.store.deliveries(state=state, service=service, limit=limit, offset=offset)

    def windows(self) -> list[WindowView]:
        """Every maintenance window: the config's, then those added at run time."""
        return [WindowView(w, "config") for w in self._config.maintenance] + [
            WindowView(w, "api") for w in self.adhoc_windows.values()
        ]

    def health(self) -> Health:
        """Figures of the scheduler, the writer, the notifier and the last reload."""
        stats = self.scheduler.stats
        notices = self._notices
        return Health(
            started_at=self.started_at,
            services=len(self.configs),
            scheduler=SchedulerFigures(
                stats.runs,
                stats.skipped,
                self.scheduler.in_flight,
                stats.percentile(50),
                stats.percentile(99),
            ),
            store=StoreFigures(self.writer.pending, self.writer.flushes, self.writer.failures),
            notifications=notices.outbox_figures() if notices else OutboxFigures(),
            acks=notices.ack_figures() if notices else None,
            reload=self.reload_status,
            cluster=self.cluster_figures(),
            events=dict(self.book.event_counts),
        )

    def subscribe(self, maxsize: int) -> Subscription[BusItem]:
        """A bounded feed of the bus (dropped, never waited for, when it falls behind)."""
        return self.bus.subscribe(maxsize)

    async def secret(self, name: str) -> str:
        """A random hex key kept in the store under ``name``."""
        return await self.store.keep_meta(name, secrets.token_hex(32))

    # -- commands (EnginePort) -------------------------------------------------------

    async def acknowledge(
        self, name: str, author: str, comment: str = "", expires: float | None = None
    ) -> Incident:
        """Acknowledge the open incident of ``name``; its notices stop until it closes or
        gets worse."""
        if self.relay is not None and self._elsewhere(name):
            return await self.relay.acknowledge(name, author, comment, expires)
        service, incident = self._open_incident(name)
        now = self.clock.time()
        incident, events = rules.acknowledge(incident, Ack(author, comment, now, expires))
        notices = rules.ack_notice(
            incident,
            NoticeKind.ACKNOWLEDGED,
            now,
            events[0].message,
            service,
            self._config.notifications,
        )
        return await self._review(service, incident, events, notices)

    async def unacknowledge(self, name: str, author: str) -> Incident:
        """Take the acknowledgement of ``name``'s open incident back."""
        if self.relay is not None and self._elsewhere(name):
            return await self.relay.unacknowledge(name, author)
        service, incident = self._open_incident(name)
        if incident.ack is None:
            raise CommandRefused(f"{name} is not acknowledged")
        now = self.clock.time()
        incident, events = rules.unacknowledge(
            incident, now, f"acknowledgement taken back by {author}"
        )
        notices = rules.ack_notice(
            incident,
            NoticeKind.UNACKNOWLEDGED,
            now,
            events[0].message,
            service,
            self._config.notifications,
        )
        return await self._review(service, incident, events, notices)

    async def add_maintenance(self, window: MaintenanceWindow) -> MaintenanceWindow:
        """Add a maintenance window at run time (persisted; it survives restarts).

        The services it covers are re-evaluated at once, so their flags show now.
        """
        window = window.model_copy(
            update={
                "id": window.id or uuid.uuid4().hex[:12],
                "created": window.created or datetime.fromtimestamp(self.clock.time(), UTC),
            }
        )
        assert window.id is not None
        await self.store.save_window(
            window.id, window.model_dump(mode="json", by_alias=True, exclude_none=True)
        )
        self.adhoc_windows[window.id] = window
        self._windows_changed()
        return window

    async def remove_maintenance(self, window_id: str) -> bool:
        """Remove a window added at run time; False when there is none with that id.
        A window of the config is refused: it changes only with the config file."""
        if window_id not in self.adhoc_windows and any(
            w.id == window_id for w in self._config.maintenance
        ):
            raise CommandRefused(
                f"maintenance window {window_id!r} is defined in the config; "
                "edit the config file (and reload) to change or remove it"
            )
        # The store is the cluster's list: a window added on another node a moment ago
        # (not read here yet) is removed there too, and the other nodes drop it from
        # there. The relay may take the window up, or its deletion, while this awaits:
        # either way it is gone now, and the store says whether it was there to remove.
        deleted = await self.store.delete_window(window_id)
        if self.adhoc_windows.pop(window_id, None) is not None:
            self._windows_changed()
        return deleted

    async def run_now(self, name: str) -> None:
        """Run the named service's check at once (outside its rhythm)."""
        if self.relay is not None and self._elsewhere(name):
            await self.relay.run_now(name)
            return
        if name not in self.configs:
            raise UnknownService(f"no service named {name!r}")
        if name not in self.scheduler:
            raise CommandRefused(f"{name} is disabled: there is no check to run")
        self.scheduler.run_now(name)

    def _elsewhere(self, name: str) -> bool:
        """Whether ``name`` is configured but run by another node (its commands go
        through the relay to that node)."""
        return name in self.configs and not self.owns(name)

    async def push_heartbeat(self, token: str, *, ok: bool, message: str) -> str | None:
        """Record a job's push; returns the service it belongs to, None for an unknown token.

        The push is persisted before it is acknowledged, and the service is checked
        at once so its state reflects the push without waiting for its next run.
        """
        name = self.heartbeats.owner(token)
        if name is None:
            return None
        beat = Heartbeat(name, self.clock.time(), ok, message)
        await self.store.save_heartbeat(beat)
        self.heartbeats.record(beat)
        if name in self.scheduler:
            self.scheduler.run_now(name)
        return name

    async def reload(self, source: str = "api") -> ReloadResult:
        """Read the config file again and apply it if valid; else keep the running one."""
        if self._reloader is None:
            result = ReloadResult(
                False, source, time.time(), self._config.checksum, errors=("no reloader",)
            )
        else:
            result = await self._reloader(source)
        self.reload_status = ReloadStatus(
            result.ok, result.at, source, None if result.ok else "\n".join(result.errors)
        )
        self.bus.publish(ConfigReloaded(result) if result.ok else ReloadFailed(result))
        return result

    # -- the service lifecycle (what reconciliation uses) -------------------------------

    async def remembered(self) -> dict[str, ServiceState]:
        """Every state the store keeps (a service added back resumes from it)."""
        return await self.store.load_states()

    def adopt(self, config: Config) -> None:
        """Run ``config`` from now on: its services, push tokens and windows. Nothing
        awaits between this and the retire/restart/begin calls that follow it, so
        checks never see half a swap."""
        self._config = config
        self.configs = {s.name: s for s in config.services}
        self._index_locations()
        self.heartbeats.set_tokens(_tokens(config))
        self._maintenance.forget()

    def retire(self, name: str) -> None:
        """Stop checking ``name`` and drop it from memory; an open incident is closed
        without a recovery notice (nothing recovered)."""
        now = self.clock.time()
        self.scheduler.remove(name)
        state, incident = self.book.drop(name)
        if incident is None or not incident.open:
            return
        outcome = rules.disable(state, incident, now)
        closed = [
            replace(e, message="removed from the config")
            for e in outcome.events
            if e.kind is EventKind.INCIDENT_CLOSED
        ]
        # Written and published as a decision, but not as a state change: the service is gone.
        self.book.record(
            replace(outcome, state=state, events=closed, notices=[]), None, changed=False
        )

    def restart(self, service: ServiceConfig) -> None:
        """Go on with ``service``'s new settings, on its rhythm (disabled: stop checking)."""
        now = self.clock.time()
        name = service.name
        if name not in self.states:
            return  # another node runs it
        if not service.enabled:
            self.scheduler.remove(name)
            self.book.apply(rules.disable(self.states[name], self.incidents.get(name), now))
        elif name in self.scheduler:
            self.scheduler.replace(name, service.interval)
        else:
            # Enabled again: its first check comes at its stable phase.
            self.scheduler.add(name, service.interval)
        self.bus.publish(StateChanged(name))

    def begin(self, service: ServiceConfig, restored: ServiceState | None) -> None:
        """Start ``service`` (from ``restored`` if the store remembers it) at its phase,
        if this node runs it."""
        if not self.owns(service.name) or service.name in self.states:
            return
        state = restored or ServiceState(service.name)
        self.states[service.name] = state
        if service.locations:
            self._begun[service.name] = self.clock.time()
        if service.enabled:
            self.scheduler.add(service.name, service.interval)
        else:
            self.book.apply(rules.disable(state, self.incidents.get(service.name), self.now()))
        self.bus.publish(StateChanged(service.name))

    async def forget(self, names: Sequence[str]) -> None:
        """Drop the rows of retired services from the store, after what is queued for
        them (a pending write landing after the forget would bring a ghost back)."""
        await self.writer.flush()
        await self.store.forget(list(names))

    def review_windows(self) -> None:
        """The windows changed: every service's maintenance flag is worked out again."""
        self._windows_changed()

    # -- checks and decisions ----------------------------------------------------------

    async def _run_service(self, name: str, lateness: float) -> float | None:
        # One coroutine for the whole run, no helper awaited: each level of coroutines
        # costs every check a frame to make, run and end.
        # A run asked for out of turn serves that ask once it is done (see ParentWatch).
        asked = self._parents.asked(name)
        started = self.clock.time() if asked else 0.0
        try:
            service = self.configs.get(name)
            if service is None:
                return None  # removed by a reload while it waited for a slot
            ctx = CheckContext(
                timeout=service.timeout,
                http_session=self.sessions.get,
                clock=self.clock,
                resolver=self.resolver,
                service=name,
                interval=service.interval,
                pushes=self.heartbeats,
            )
            # A result is judged by the world it saw: a child whose check began while a
            # parent was down is unreachable even if the parent came back meanwhile.
            parent_was_down = self._parent_down(service)
            if service.locations:
                combined = self._combined_result(service)
                if combined is None:
                    return service.retry_after  # its locations' results are on their way
                result = combined
            else:
                result = await run_check(check_type(service.type), service.check, ctx)
            current = self.configs.get(name)
            if current is None or not current.enabled or name not in self.states:
                # Removed or disabled by a reload, or handed to another node, while it
                # ran: nothing to apply.
                return None
            prev = self.states[name]
            outcome = rules.apply(
                prev,
                self.incidents.get(name),
                result,
                service,
                self._config.notifications,
                self._situation(service, parent_was_down=parent_was_down),
            )
            state = outcome.state
            record = ResultRecord(
                name,
                state.seq,
                state.status,
                state.message,
                result.metrics,
                result.started_at,
                result.duration,
                lateness,
            )
            self.book.apply(outcome, record)
            self._wait_for_parents(outcome)
            self._tell_children(name)
            located = self._service_of.get(name)
            if located is not None and prev.confirmed_status != state.confirmed_status:
                self._decide_now(located)
            return service.retry_after if rules.wants_retry(state) else None
        finally:
            if asked:
                self._parents.ran(name, started)

    # -- locations (pymon.locations) -------------------------------------------------

    def _index_locations(self) -> None:
        """Which services list locations, and each location check's service."""
        self._located = [name for name, s in self.configs.items() if s.locations]
        self._service_of = {
            name: where[0] for name in self.configs if (where := split(name)) is not None
        }

    def _running_located(self) -> list[ServiceConfig]:
        """The services with locations this node runs."""
        return [self.configs[n] for n in self._located if n in self.states]

    def _combined_result(self, service: ServiceConfig) -> CheckResult | None:
        """``service``'s result: what its locations decide together now. None while
        that cannot be known yet: before the board's first look at the store, and
        while too few locations report within the first age limit after this node
        began running it (a start or a handover: their results are on their way,
        and an ``unknown`` then would be noise)."""
        now = self.clock.time()
        if not self.board.ready:
            return None
        decided = self.board.combined(service, self.board.results(service), now)
        if (
            decided.status is Status.UNKNOWN
            and now - self._begun.get(service.name, float("-inf"))
            < max_age(service) + self.board.travel
        ):
            return None
        metrics = {
            "locations_present": float(len(decided.present)),
            "locations_partial": float(len(decided.partial_locations)),
        }
        return CheckResult(decided.status, decided.message, metrics, now, 0.0)

    def _decide_now(self, name: str) -> None:
        """A location of ``name`` changed its mind: decide for ``name`` now, if this
        node runs it."""
        if name in self.scheduler:
            self.scheduler.run_now(name)

    def _gap(self, name: str) -> float:
        """``name``'s gap limit: a longer span between two results is no data."""
        service = self.configs.get(name)
        return 0.0 if service is None else gap_limit(service.interval, service.timeout)

    def _situation(
        self, service: ServiceConfig, *, parent_was_down: bool = False
    ) -> rules.Situation:
        """The world around ``service`` now: its maintenance windows and its parents."""
        now = self.clock.time()
        maintenance = self._maintenance.covered(service, self._windows(), now)
        if not service.depends_on:
            return rules.Situation(now, maintenance=maintenance)
        parents = [p for dep in service.depends_on if (p := self.states.get(dep)) is not None]
        return rules.Situation(
            now,
            maintenance=maintenance,
            parent_down=parent_was_down or self._parent_down(service),
            parents=tuple(ParentWatch.view(p, p.name in self.scheduler) for p in parents),
        )

    def _parent_down(self, service: ServiceConfig) -> bool:
        """Whether a service ``service`` depends on is confirmed error or failed."""
        return bool(service.depends_on) and any(
            (parent := self.states.get(dep)) is not None
            and parent.confirmed_status in (Status.ERROR, Status.FAILED)
            for dep in service.depends_on
        )

    def _wait_for_parents(self, outcome: rules.Outcome) -> None:
        """A held notice waits for parents: each is run now, once however many ask."""
        if not outcome.waiting_on:
            return  # the common case: nothing held for a parent
        child = outcome.state.name
        parents = [(p, self.states.get(p), p in self.scheduler) for p in outcome.waiting_on]
        for parent in self._parents.wait(child, parents, self.clock.time()):
            log.debug("%s: checking %s now, before notifying", child, parent)

    def _tell_children(self, parent: str) -> None:
        """``parent`` has a new result: decide again for the children waiting on it."""
        for child in self._parents.answered(parent):
            service = self.configs.get(child)
            if service is not None and service.enabled and child in self.states:
                self._review_now(service)

    def _open_incident(self, name: str) -> tuple[ServiceConfig, Incident]:
        service = self.configs.get(name)
        if service is None or name not in self.states:
            raise UnknownService(f"no service named {name!r}")
        incident = self.incidents.get(name)
        if incident is None or not incident.open:
            raise CommandRefused(f"{name} has no open incident to acknowledge")
        return service, incident

    async def _review(
        self,
        service: ServiceConfig,
        incident: Incident,
        events: list[Event],
        notices: list[Notice] | None = None,
    ) -> Incident:
        """Review ``service`` after a command changed its ``incident``: ``events`` and
        ``notices`` of the command go first, in the same write as the incident."""
        outcome = rules.review(
            self.states[service.name],
            incident,
            service,
            self._config.notifications,
            self._situation(service),
        )
        outcome.events[:0] = events
        outcome.notices[:0] = notices or []
        self.book.apply(outcome)
        self._wait_for_parents(outcome)
        # An acknowledgement is an operator's word: make it durable before answering.
        await self.writer.flush()
        assert outcome.incident is not None
        return outcome.incident

    # -- maintenance ---------------------------------------------------------------------

    def _windows(self) -> tuple[MaintenanceWindow, ...]:
        return (*self._config.maintenance, *self.adhoc_windows.values())

    def _windows_changed(self) -> None:
        self._maintenance.forget()
        for service in self.configs.values():
            if service.enabled and service.name in self.states:
                self._review_now(service)
        log.info(
            "maintenance windows changed: %d in force",
            len(self._config.maintenance) + len(self.adhoc_windows),
        )

    def _review_now(self, service: ServiceConfig) -> None:
        outcome = rules.review(
            self.states[service.name],
            self.incidents.get(service.name),
            service,
            self._config.notifications,
            self._situation(service),
        )
        if outcome.events or outcome.notices:
            self.book.apply(outcome)
        self._wait_for_parents(outcome)

    def _flipped(self, name: str) -> None:
        """A maintenance window started or ended for ``name``: act on it now."""
        service = self.configs.get(name)
        if service is not None and service.enabled and name in self.states:
            self._review_now(service)


def _tokens(config: Config) -> dict[str, str]:
    return push_tokens({s.name: s.check for s in config.services})
