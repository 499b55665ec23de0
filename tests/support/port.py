"""A fake of the engine's port: plain values in memory, commands that change them.

Web tests build the app on a :class:`FakePort` (``create_app(port)``): no scheduler,
no store, no sockets, no sleeps. It keeps what the commands did (``calls``) so a
test can see what the web asked of the engine, and it answers as the engine
(:class:`pymon.engine.runtime.Runtime`) does:

* decisions go through the engine's pure rules (:mod:`pymon.engine.rules`): a
  result given with :meth:`FakePort.check` moves the state, opens and closes
  incidents, records events and queues notices (as pending deliveries) exactly as
  a real check's would; an acknowledgement or a maintenance window is reviewed by
  the same rules, so flags and events follow as they do in the daemon;
* every decision is published on ``bus`` as the runtime publishes it: a typed event
  per transition, then ``StateChanged`` when the state or incident changed;
* commands refuse as the engine does (:class:`~pymon.errors.UnknownService`,
  :class:`~pymon.errors.CommandRefused`, with its messages);
* a service with ``locations`` is expanded into its location checks (``web@eu-west``)
  as the config's load expands it; its view carries each location's latest result and
  :func:`pymon.locations.combine`'s verdict over them (every listed location counts as
  announced unless ``announced`` says otherwise), and a location check's new result
  decides the service again, as its node does;
* reads never change anything, and time is the :class:`FakeClock`'s.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from pymon import locations
from pymon.checks.heartbeat import push_tokens
from pymon.config.load import load_config_text
from pymon.config.schema import Config, ServiceConfig
from pymon.config.windows import MaintenanceWindow
from pymon.engine import rules
from pymon.engine.bus import Bus, Subscription
from pymon.engine.maintenance import windows_for
from pymon.engine.ports import (
    EnginePort,
    Health,
    NodeView,
    ReloadStatus,
    ServiceView,
    WindowView,
    count_statuses,
)
from pymon.errors import CommandRefused, UnknownService
from pymon.events import BusItem, CheckCompleted, NoticeQueued, StateChanged, from_transition
from pymon.model import Ack, CheckResult, Event, Incident, ReloadResult, ServiceState, Status
from pymon.store.base import Delivery, ResultRecord
from pymon.uptime import HOUR, Bucket, Totals, add_up
from tests.support.clock import FakeClock

__all__ = ["SOME_TIME", "FakePort", "fake_port"]

#: A moment with nothing special about it (not near midnight, a DST change or a year end).
SOME_TIME = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC


@dataclass
class FakePort:
    """An :class:`~pymon.engine.ports.EnginePort` over plain values."""

    _config: Config
    clock: FakeClock = field(default_factory=lambda: FakeClock(SOME_TIME))
    states: dict[str, ServiceState] = field(default_factory=dict)
    incidents: dict[str, Incident] = field(default_factory=dict)
    results: dict[str, list[ResultRecord]] = field(default_factory=dict)
    event_log: list[Event] = field(default_factory=list)
    delivery_log: list[Delivery] = field(default_factory=list)
    adhoc: dict[str, MaintenanceWindow] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    figures: Health | None = None
    #: The cluster's nodes as ``nodes()`` answers them (none: a port with no cluster).
    node_views: list[NodeView] = field(default_factory=list)
    #: The node running each service (those not named: None, nobody holds its shard).
    owners: dict[str, str] = field(default_factory=dict)
    #: Closed incidents, oldest first (``incidents_between`` answers from these too).
    past_incidents: list[Incident] = field(default_factory=list)
    #: Hour and day buckets as ``rollups`` answers them (tests seed them).
    buckets: list[Bucket] = field(default_factory=list)
    reload_result: ReloadResult | None = None
    reload_status: ReloadStatus = field(default_factory=ReloadStatus)
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    bus: Bus[BusItem] = field(default_factory=Bus)
    #: The locations some node has announced (None: every location a service lists).
    announced: set[str] | None = None

    def __post_init__(self) -> None:
        if not any(locations.split(s.name) for s in self._config.services):
            # As the config's load: each service with locations and its location checks.
            expanded = locations.expand(self._config.services)
            self._config = self._config.model_copy(update={"services": expanded})
        # As the runtime's load: every service gets a state, a disabled one is disabled.
        specs = {s.name: s.check for s in self._config.services}
        self.tokens = {**push_tokens(specs), **self.tokens}
        for service in self._config.services:
            state = self.states.setdefault(service.name, ServiceState(service.name))
            if not service.enabled:
                self._apply(rules.disable(state, self.incidents.get(service.name), self.now()))

    # -- queries -----------------------------------------------------------------

    @property
    def config(self) -> Config:
        return self._config

    def now(self) -> float:
        return self.clock.time()

    def _view(self, name: str) -> ServiceView | None:
        service = self._config.service(name)
        if service is None or name not in self.states:
            return None
        seen, combined = self._locations(service)
        return ServiceView(
            service,
            self.states[name],
            self.incidents.get(name),
            service.enabled,
            self.owners.get(name),
            seen,
            combined,
        )

    def _locations(
        self, service: ServiceConfig
    ) -> tuple[dict[str, locations.LocationResult], locations.Combined | None]:
        """Each of ``service``'s locations' latest result and what they decide now."""
        if not service.locations:
            return {}, None
        seen: dict[str, locations.LocationResult] = {}
        for where in service.locations:
            check = locations.at(service.name, where)
            state = self.states.get(check)
            if state is None or state.last_check is None:
                continue
            seen[where] = locations.LocationResult(
                where,
                state.confirmed_status,
                state.message,
                state.last_check,
                state.last_duration,
                self.owners.get(check),
            )
        combined = locations.combine(
            service.locations,
            seen,
            quorum=locations.quorum_of(len(service.locations), service.quorum),
            now=self.now(),
            max_age=locations.max_age(service),
            announced=set(service.locations) if self.announced is None else self.announced,
            notify_partial=service.notify_partial,
        )
        return seen, combined

    async def services(self) -> list[ServiceView]:
        # As the runtime: a location check is shown with its service, not listed.
        listed = locations.listed(self._config.services)
        return [v for s in listed if (v := self._view(s.name)) is not None]

    async def service(self, name: str) -> ServiceView | None:
        return self._view(name)

    async def status_counts(self) -> dict[str, int]:
        return count_statuses(v.state for v in locations.listed(await self.services()))

    async def history(self, name: str, limit: int) -> list[ResultRecord]:
        return sorted(self.results.get(name, []), key=lambda r: -r.seq)[:limit]

    async def events(self, limit: int, service: str | None = None) -> list[Event]:
        newest = [e for e in reversed(self.event_log) if service is None or e.service == service]
        return newest[:limit]

    async def open_incidents(self) -> list[Incident]:
        return [i for i in self.incidents.values() if i.open]

    async def deliveries(
        self,
        *,
        state: Literal["pending", "delivered", "failed"] | None = None,
        service: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Delivery]:
        rows = [
            d
            for d in reversed(self.delivery_log)
            if (state is None or d.state == state)
            and (service is None or d.notice.service == service)
        ]
        return rows[offset : offset + limit]

    async def rollups(
        self, names: Sequence[str] | None, since: float, until: float, width: int = HOUR
    ) -> list[Bucket]:
        wanted = None if names is None else set(names)
        return sorted(
            (
                b
                for b in self.buckets
                if b.width == width
                and (wanted is None or b.service in wanted)
                and b.end > since
                and b.start < until
            ),
            key=lambda b: (b.service, b.start),
        )

    async def totals(
        self,
        names: Sequence[str] | None,
        since: float,
        until: float,
        width: int = HOUR,
        *,
        now: float | None = None,
    ) -> dict[str, Totals]:
        return add_up(await self.rollups(names, since, until, width), since, until, now)

    async def incidents_between(
        self, names: Sequence[str] | None, since: float, until: float
    ) -> list[Incident]:
        wanted = None if names is None else set(names)
        every = {i.id: i for i in self.past_incidents} | {i.id: i for i in self.incidents.values()}
        return sorted(
            (
                i
                for i in every.values()
                if (wanted is None or i.service in wanted)
                and i.opened_at < until
                and (i.closed_at is None or i.closed_at > since)
            ),
            key=lambda i: i.opened_at,
        )

    async def nodes(self) -> list[NodeView]:
        return sorted(self.node_views, key=lambda n: n.name)

    def windows(self) -> list[WindowView]:
        return [WindowView(w, "config") for w in self._config.maintenance] + [
            WindowView(w, "api") for w in self.adhoc.values()
        ]

    def health(self) -> Health:
        if self.figures is not None:
            return self.figures
        return Health(
            started_at=SOME_TIME - 60,
            services=len(locations.listed(self._config.services)),
            reload=self.reload_status,
        )

    def subscribe(self, maxsize: int) -> Subscription[BusItem]:
        return self.bus.subscribe(maxsize)

    async def secret(self, name: str) -> str:
        return self.secrets.setdefault(name, uuid.uuid4().hex * 2)

    # -- commands ----------------------------------------------------------------

    def _open(self, name: str) -> tuple[ServiceConfig, Incident]:
        service = self._config.service(name)
        if service is None or name not in self.states:
            raise UnknownService(f"no service named {name!r}")
        incident = self.incidents.get(name)
        if incident is None or not incident.open:
            raise CommandRefused(f"{name} has no open incident to acknowledge")
        return service, incident

    def _reviewed(
        self, service: ServiceConfig, incident: Incident, events: list[Event]
    ) -> Incident:
        """An operator's change of ``incident`` reviewed by the rules, as the runtime does."""
        outcome = self._review(service, incident)
        outcome.events[:0] = events
        self._apply(outcome)
        assert outcome.incident is not None
        return outcome.incident

    async def acknowledge(
        self, name: str, author: str, comment: str = "", expires: float | None = None
    ) -> Incident:
        self.calls.append(("acknowledge", (name, author, comment, expires)))
        service, incident = self._open(name)
        acked, events = rules.acknowledge(incident, Ack(author, comment, self.now(), expires))
        return self._reviewed(service, acked, events)

    async def unacknowledge(self, name: str, author: str) -> Incident:
        self.calls.append(("unacknowledge", (name, author)))
        service, incident = self._open(name)
        if incident.ack is None:
            raise CommandRefused(f"{name} is not acknowledged")
        why = f"acknowledgement taken back by {author}"
        return self._reviewed(service, *rules.unacknowledge(incident, self.now(), why))

    async def add_maintenance(self, window: MaintenanceWindow) -> MaintenanceWindow:
        self.calls.append(("add_maintenance", (window,)))
        window = window.model_copy(
            update={
                "id": window.id or uuid.uuid4().hex[:12],
                "created": window.created or datetime.fromtimestamp(self.now(), UTC),
            }
        )
        assert window.id is not None
        self.adhoc[window.id] = window
        self._windows_changed()
        return window

    async def remove_maintenance(self, window_id: str) -> bool:
        self.calls.append(("remove_maintenance", (window_id,)))
        if window_id not in self.adhoc and any(w.id == window_id for w in self._config.maintenance):
            raise CommandRefused(f"maintenance window {window_id!r} is defined in the config")
        if self.adhoc.pop(window_id, None) is None:
            return False
        self._windows_changed()
        return True

    async def run_now(self, name: str) -> None:
        self.calls.append(("run_now", (name,)))
        view = self._view(name)
        if view is None:
            raise UnknownService(f"no service named {name!r}")
        if not view.scheduled:
            raise CommandRefused(f"{name} is disabled: there is no check to run")

    async def push_heartbeat(self, token: str, *, ok: bool, message: str) -> str | None:
        self.calls.append(("push_heartbeat", (token, ok, message)))
        return next((name for name, t in self.tokens.items() if t == token), None)

    async def reload(self, source: str) -> ReloadResult:
        self.calls.append(("reload", (source,)))
        result = self.reload_result or ReloadResult(True, source, self.now(), self._config.checksum)
        error = None if result.ok else "\n".join(result.errors)
        self.reload_status = ReloadStatus(result.ok, result.at, source, error)
        return result

    # -- decisions, as the runtime takes them --------------------------------------

    def _situation(self, service: ServiceConfig) -> rules.Situation:
        now = self.now()
        windows = [view.window for view in self.windows()]
        parents = (self.states.get(dep) for dep in service.depends_on)
        return rules.Situation(
            now,
            maintenance=bool(windows_for(windows, service.name, service.tags, now)),
            parent_down=any(
                p is not None and p.confirmed_status in (Status.ERROR, Status.FAILED)
                for p in parents
            ),
        )

    def _review(self, service: ServiceConfig, incident: Incident | None) -> rules.Outcome:
        policy = self._config.notifications
        state = self.states[service.name]
        return rules.review(state, incident, service, policy, self._situation(service))

    def _windows_changed(self) -> None:
        for service in self._config.services:
            if service.enabled and service.name in self.states:
                outcome = self._review(service, self.incidents.get(service.name))
                if outcome.events or outcome.notices:
                    self._apply(outcome)

    def _apply(self, outcome: rules.Outcome, record: ResultRecord | None = None) -> None:
        """Keep one decision (state, incident, result, events, notices as pending
        deliveries) and publish it as the runtime does: CheckCompleted, a typed event
        per transition, NoticeQueued per notice, then StateChanged."""
        state, incident = outcome.state, outcome.incident
        name = state.name
        changed = self.states.get(name) is not state or self.incidents.get(name) is not incident
        self.states[name] = state
        if incident is not None and incident.open:
            self.incidents[name] = incident
        elif incident is not None:
            self.incidents.pop(name, None)
            self.past_incidents.append(incident)
        if record is not None:
            self.results.setdefault(name, []).append(record)
        self.event_log.extend(outcome.events)
        self.delivery_log.extend(
            Delivery(notice, channel, 0, notice.at)
            for notice in outcome.notices
            for channel in notice.channels
        )
        if record is not None:
            self.bus.publish(CheckCompleted(name, state, record))
        for event in outcome.events:
            self.bus.publish(from_transition(event, incident))
        for notice in outcome.notices:
            self.bus.publish(NoticeQueued(notice))
        if changed:
            self.bus.publish(StateChanged(name))

    # -- test helpers ------------------------------------------------------------

    def check(
        self,
        name: str,
        status: Status,
        message: str = "",
        metrics: Mapping[str, float] | None = None,
        *,
        duration: float = 0.01,
    ) -> ServiceState:
        """A check of ``name`` found ``status`` now: the rules decide what follows,
        as for a real check (flap guard, incident, events, notices)."""
        service = self._config.service(name)
        assert service is not None and service.enabled, f"{name} is not a checked service"
        now, policy, situation = self.now(), self._config.notifications, self._situation(service)
        result = CheckResult(status, message, dict(metrics or {}), now, duration)
        state, incident = self.states[name], self.incidents.get(name)
        outcome = rules.apply(state, incident, result, service, policy, situation)
        new = outcome.state
        record = ResultRecord(
            name, new.seq, new.status, new.message, result.metrics, now, duration, 0
        )
        self._apply(outcome, record)
        self._decide_for(name)
        return new

    def _decide_for(self, name: str) -> None:
        """After a location check's result: its service decided again from its
        locations, as the service's node does (a check of the combined verdict)."""
        parent = locations.split(name)
        view = None if parent is None else self._view(parent[0])
        if view is not None and view.combined is not None and view.config.enabled:
            self.check(view.name, view.combined.status, view.combined.message, duration=0.0)

    def set_status(self, name: str, status: Status, message: str = "", **extra: Any) -> None:
        """Put ``name`` in ``status`` (confirmed) directly, without the rules."""
        state = self.states[name]
        self.states[name] = replace(
            state,
            status=status,
            message=message,
            confirmed_status=status,
            confirmed=True,
            count=state.count + 1,
            seq=state.seq + 1,
            last_check=self.now(),
            **extra,
        )
        self.bus.publish(StateChanged(name))
        self._decide_for(name)

    def open_incident(self, name: str, status: Status = Status.FAILED) -> Incident:
        """Open an incident for ``name`` now, directly, without the rules."""
        incident = Incident(f"inc-{name}", name, self.now(), status, status)
        self.incidents[name] = incident
        return incident

    def called(self, command: str) -> Sequence[tuple[Any, ...]]:
        """The arguments of every call of ``command``, in order."""
        return [args for name, args in self.calls if name == command]


def fake_port(text: str = "services: []", **kwargs: Any) -> FakePort:
    """A :class:`FakePort` for the config YAML ``text``."""
    return FakePort(load_config_text(text), **kwargs)


def _conforms(port: FakePort) -> EnginePort:
    # mypy checks here that the fake keeps up with the port's signatures.
    return port
