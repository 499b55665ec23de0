"""The one event vocabulary: every kind of thing that happens in pymon, as a type.

The rules emit transitions as :class:`~pymon.model.Event` values keyed by
:class:`~pymon.model.EventKind`; each travels on the bus as the typed event that
names it. Every class below that carries a transition declares the kinds it
takes (``KINDS``); :class:`Transition` takes every kind nobody else claims. The
lists the rest of pymon uses are *derived* from these declarations, never written
out by hand:

* :data:`PymonEvent`, the union of every typed event, and :data:`EVENT_TYPES`, its
  members in order;
* :data:`TRANSITION_TYPES`, those that carry a transition (``event``);
* :data:`TYPE_NAMES`, their labels (``check_completed``...) for metrics;
* :func:`from_transition`, the map from a kind to its type.

Beside the typed events, :class:`StateChanged` is a hint on the bus that one
service's state or incident changed (the web stream re-reads it through the
engine's port); it is not an event and is not counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, get_args

from pymon.model import Event, EventKind, Incident, Notice, ReloadResult, ServiceState
from pymon.store.base import ResultRecord

__all__ = [
    "EVENT_TYPES",
    "TRANSITION_TYPES",
    "TYPE_NAMES",
    "Acknowledged",
    "BusItem",
    "CheckCompleted",
    "ConfigReloaded",
    "IncidentClosed",
    "IncidentEscalated",
    "IncidentOpened",
    "MaintenanceEnded",
    "MaintenanceStarted",
    "NoticeFailed",
    "NoticeQueued",
    "NoticeSent",
    "PymonEvent",
    "ReloadFailed",
    "StateChanged",
    "StatusChanged",
    "Transition",
    "Unacknowledged",
    "from_transition",
    "type_name",
]


@dataclass(frozen=True, slots=True)
class CheckCompleted:
    """A check of ``service`` ran; ``state`` is the service after it, ``record`` the result row."""

    service: str
    state: ServiceState
    record: ResultRecord


@dataclass(frozen=True, slots=True)
class _ServiceEvent:
    KINDS: ClassVar[tuple[EventKind, ...]] = ()

    service: str
    event: Event


@dataclass(frozen=True, slots=True)
class _IncidentEvent:
    KINDS: ClassVar[tuple[EventKind, ...]] = ()

    service: str
    incident: Incident
    event: Event


@dataclass(frozen=True, slots=True)
class StatusChanged(_ServiceEvent):
    """The status of ``service`` changed, or a new status was confirmed (``event.kind``)."""

    KINDS = (EventKind.CHANGED, EventKind.CONFIRMED)


@dataclass(frozen=True, slots=True)
class IncidentOpened(_IncidentEvent):
    """A confirmed problem opened ``incident``."""

    KINDS = (EventKind.INCIDENT_OPENED,)


@dataclass(frozen=True, slots=True)
class IncidentEscalated(_IncidentEvent):
    """``incident`` escalated: by time (``escalated``) or by a worse status (``incident_worse``)."""

    KINDS = (EventKind.ESCALATED, EventKind.INCIDENT_WORSE)


@dataclass(frozen=True, slots=True)
class IncidentClosed(_IncidentEvent):
    """``incident`` closed (recovered, disabled or removed from the config)."""

    KINDS = (EventKind.INCIDENT_CLOSED,)


@dataclass(frozen=True, slots=True)
class Acknowledged(_IncidentEvent):
    """Someone acknowledged ``incident``."""

    KINDS = (EventKind.ACKNOWLEDGED,)


@dataclass(frozen=True, slots=True)
class Unacknowledged(_IncidentEvent):
    """The acknowledgement of ``incident`` was taken back, expired or cleared."""

    KINDS = (EventKind.UNACKNOWLEDGED,)


@dataclass(frozen=True, slots=True)
class MaintenanceStarted(_ServiceEvent):
    """A maintenance window began to cover ``service``."""

    KINDS = (EventKind.MAINTENANCE_STARTED,)


@dataclass(frozen=True, slots=True)
class MaintenanceEnded(_ServiceEvent):
    """No maintenance window covers ``service`` any more."""

    KINDS = (EventKind.MAINTENANCE_ENDED,)


@dataclass(frozen=True, slots=True)
class Transition(_ServiceEvent):
    """Any other transition of ``service`` (flapping, unreachable...), and an incident
    kind that arrives without its incident."""


@dataclass(frozen=True, slots=True)
class NoticeQueued:
    """The rules decided ``notice``; it is on its way to the store, then the outbox."""

    notice: Notice


@dataclass(frozen=True, slots=True)
class NoticeSent:
    """``channel`` took ``notice`` at attempt number ``attempt``."""

    notice: Notice
    channel: str
    attempt: int


@dataclass(frozen=True, slots=True)
class NoticeFailed:
    """An attempt to deliver ``notice`` to ``channel`` failed; ``final`` when given up."""

    notice: Notice
    channel: str
    attempt: int
    error: str
    final: bool


@dataclass(frozen=True, slots=True)
class ConfigReloaded:
    """A reload applied a new config (``result.diff`` says what changed)."""

    result: ReloadResult


@dataclass(frozen=True, slots=True)
class ReloadFailed:
    """A reload was refused; the running config is kept (``result.errors`` says why)."""

    result: ReloadResult


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The state or the incident of service ``name`` changed: read it through the port."""

    name: str


#: Every typed event. The lists below are derived from it.
PymonEvent = (
    CheckCompleted
    | StatusChanged
    | IncidentOpened
    | IncidentEscalated
    | IncidentClosed
    | Acknowledged
    | Unacknowledged
    | MaintenanceStarted
    | MaintenanceEnded
    | Transition
    | NoticeQueued
    | NoticeSent
    | NoticeFailed
    | ConfigReloaded
    | ReloadFailed
)

#: What travels on the engine's bus: typed events and state-change hints.
BusItem = PymonEvent | StateChanged

#: Every typed event class, in the order of :data:`PymonEvent`.
EVENT_TYPES: tuple[type[PymonEvent], ...] = get_args(PymonEvent)

#: The types that carry one of the rules' transitions (an ``event`` of :class:`Event`).
TRANSITION_TYPES: tuple[type[_ServiceEvent | _IncidentEvent], ...] = tuple(
    t for t in EVENT_TYPES if issubclass(t, _ServiceEvent | _IncidentEvent)
)

_BY_KIND: dict[EventKind, type[_ServiceEvent | _IncidentEvent]] = {
    kind: t for t in TRANSITION_TYPES for kind in t.KINDS
}

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_NAMES = {cls: _CAMEL.sub("_", cls.__name__).lower() for cls in EVENT_TYPES}

#: Every type's label (``check_completed``...), in :data:`EVENT_TYPES` order.
TYPE_NAMES: tuple[str, ...] = tuple(_NAMES.values())


def from_transition(event: Event, incident: Incident | None) -> PymonEvent:
    """The typed event for the rules' ``event``; ``incident`` is the service's after the step."""
    kind = _BY_KIND.get(event.kind, Transition)
    if issubclass(kind, _IncidentEvent):
        if incident is None:
            return Transition(event.service, event)
        return kind(event.service, incident, event)  # type: ignore[return-value]
    return kind(event.service, event)  # type: ignore[return-value]


def type_name(event: PymonEvent) -> str:
    """The event's type as metrics label it: ``check_completed``, ``notice_failed``..."""
    return _NAMES[type(event)]
