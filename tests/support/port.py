"""A fake of the engine's port: plain values in memory, commands that change them.

Web tests build the app on a :class:`FakePort` (``create_app(port)``): no scheduler,
no store, no sockets, no sleeps. It keeps what the commands did (``calls``) so a
test can see what the web asked of the engine, and it refuses as the engine does
(:class:`~pymon.errors.UnknownService`, :class:`~pymon.errors.CommandRefused`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pymon.config.load import load_config_text
from pymon.config.schema import Config
from pymon.config.windows import MaintenanceWindow
from pymon.engine.bus import Bus, Subscription
from pymon.engine.ports import EnginePort, Health, ServiceView, WindowView
from pymon.errors import CommandRefused, UnknownService
from pymon.events import BusItem, StateChanged
from pymon.model import (
    Ack,
    Event,
    Incident,
    ReloadResult,
    ServiceState,
    Status,
)
from pymon.store.base import Delivery, ResultRecord
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
    reload_result: ReloadResult | None = None
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    bus: Bus[BusItem] = field(default_factory=Bus)

    def __post_init__(self) -> None:
        for service in self._config.services:
            self.states.setdefault(service.name, ServiceState(service.name))

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
        return ServiceView(service, self.states[name], self.incidents.get(name), service.enabled)

    async def services(self) -> list[ServiceView]:
        return [v for s in self._config.services if (v := self._view(s.name)) is not None]

    async def service(self, name: str) -> ServiceView | None:
        return self._view(name)

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
            for d in self.delivery_log
            if (state is None or d.state == state)
            and (service is None or d.notice.service == service)
        ]
        return rows[offset : offset + limit]

    def windows(self) -> list[WindowView]:
        return [WindowView(w, "config") for w in self._config.maintenance] + [
            WindowView(w, "api") for w in self.adhoc.values()
        ]

    def health(self) -> Health:
        return self.figures or Health(started_at=SOME_TIME - 60, services=len(self.states))

    def subscribe(self, maxsize: int) -> Subscription[BusItem]:
        return self.bus.subscribe(maxsize)

    async def secret(self, name: str) -> str:
        return self.secrets.setdefault(name, uuid.uuid4().hex * 2)

    # -- commands ----------------------------------------------------------------

    def _open(self, name: str) -> Incident:
        if self._view(name) is None:
            raise UnknownService(f"no service named {name!r}")
        incident = self.incidents.get(name)
        if incident is None or not incident.open:
            raise CommandRefused(f"{name} has no open incident to acknowledge")
        return incident

    def _changed(self, name: str, incident: Incident) -> Incident:
        self.incidents[name] = incident
        self.bus.publish(StateChanged(name))
        return incident

    async def acknowledge(
        self, name: str, author: str, comment: str = "", expires: float | None = None
    ) -> Incident:
        self.calls.append(("acknowledge", (name, author, comment, expires)))
        incident = self._open(name)
        return self._changed(name, replace(incident, ack=Ack(author, comment, self.now(), expires)))

    async def unacknowledge(self, name: str, author: str) -> Incident:
        self.calls.append(("unacknowledge", (name, author)))
        incident = self._open(name)
        if incident.ack is None:
            raise CommandRefused(f"{name} is not acknowledged")
        return self._changed(name, replace(incident, ack=None))

    async def add_maintenance(self, window: MaintenanceWindow) -> MaintenanceWindow:
        self.calls.append(("add_maintenance", (window,)))
        window = window.model_copy(update={"id": window.id or uuid.uuid4().hex[:12]})
        assert window.id is not None
        self.adhoc[window.id] = window
        return window

    async def remove_maintenance(self, window_id: str) -> bool:
        self.calls.append(("remove_maintenance", (window_id,)))
        if window_id not in self.adhoc and any(w.id == window_id for w in self._config.maintenance):
            raise CommandRefused(f"maintenance window {window_id!r} is defined in the config")
        return self.adhoc.pop(window_id, None) is not None

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
        return self.reload_result or ReloadResult(True, source, self.now(), self._config.checksum)

    # -- test helpers ------------------------------------------------------------

    def set_status(self, name: str, status: Status, message: str = "", **extra: Any) -> None:
        """Put ``name`` in ``status`` (confirmed), as if checks had said so."""
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

    def open_incident(self, name: str, status: Status = Status.FAILED) -> Incident:
        """Open an incident for ``name`` now."""
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
