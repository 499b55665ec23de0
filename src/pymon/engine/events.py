"""The typed events the daemon publishes on its bus, one class per thing that happens.

The rules' transitions (:class:`~pymon.model.Event`, keyed by ``EventKind``) travel
as the type that names them:

* ``changed`` and ``confirmed`` -> :class:`StatusChanged`
* ``incident_opened`` -> :class:`IncidentOpened`; ``incident_closed`` -> :class:`IncidentClosed`
* ``escalated`` and ``incident_worse`` (escalation by time, or by a worse confirmed
  status; ``event.kind`` says which) -> :class:`IncidentEscalated`
* ``acknowledged`` -> :class:`Acknowledged`; ``unacknowledged`` -> :class:`Unacknowledged`
* ``maintenance_started`` / ``maintenance_ended`` -> :class:`MaintenanceStarted` /
  :class:`MaintenanceEnded`
* every other kind (``flapping_started``, ``flapping_stopped``, ``unreachable``,
  ``reachable``) -> the generic :class:`Transition`; so does an incident kind that
  arrives without its incident.

Beside those: :class:`CheckCompleted` for every run of a check, :class:`NoticeQueued`
for a notice the rules decided, :class:`NoticeSent` / :class:`NoticeFailed` for each
delivery attempt of the outbox, and :class:`ConfigReloaded` / :class:`ReloadFailed`
for each reload. :data:`PymonEvent` is their union.

:class:`Decided` is not an event but the carrier of one whole decision of the rules
to the store, so all of its pieces land in one transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pymon.model import Event, EventKind, Incident, Notice, ServiceState
from pymon.store.base import ResultRecord

if TYPE_CHECKING:
    from pymon.engine.reload import ReloadResult
    from pymon.engine.rules import Outcome

__all__ = [
    "EVENT_TYPES",
    "TRANSITION_TYPES",
    "TYPE_NAMES",
    "Acknowledged",
    "CheckCompleted",
    "ConfigReloaded",
    "Decided",
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
    service: str
    event: Event


@dataclass(frozen=True, slots=True)
class _IncidentEvent:
    service: str
    incident: Incident
    event: Event


@dataclass(frozen=True, slots=True)
class StatusChanged(_ServiceEvent):
    """The status of ``service`` changed, or a new status was confirmed (``event.kind``)."""


@dataclass(frozen=True, slots=True)
class IncidentOpened(_IncidentEvent):
    """A confirmed problem opened ``incident``."""


@dataclass(frozen=True, slots=True)
class IncidentEscalated(_IncidentEvent):
    """``incident`` escalated: by time (``escalated``) or by a worse status (``incident_worse``)."""


@dataclass(frozen=True, slots=True)
class IncidentClosed(_IncidentEvent):
    """``incident`` closed (recovered, disabled or removed from the config)."""


@dataclass(frozen=True, slots=True)
class Acknowledged(_IncidentEvent):
    """Someone acknowledged ``incident``."""


@dataclass(frozen=True, slots=True)
class Unacknowledged(_IncidentEvent):
    """The acknowledgement of ``incident`` was taken back, expired or cleared."""


@dataclass(frozen=True, slots=True)
class MaintenanceStarted(_ServiceEvent):
    """A maintenance window began to cover ``service``."""


@dataclass(frozen=True, slots=True)
class MaintenanceEnded(_ServiceEvent):
    """No maintenance window covers ``service`` any more."""


@dataclass(frozen=True, slots=True)
class Transition(_ServiceEvent):
    """Any other transition of ``service`` (flapping, unreachable...): see the module doc."""


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
class Decided:
    """One decision of the rules for the store: state, result, events, incident, notices."""

    outcome: Outcome
    record: ResultRecord | None = None


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

#: The types that carry one of the rules' transitions (an ``event`` of :class:`Event`).
TRANSITION_TYPES = (
    StatusChanged,
    IncidentOpened,
    IncidentEscalated,
    IncidentClosed,
    Acknowledged,
    Unacknowledged,
    MaintenanceStarted,
    MaintenanceEnded,
    Transition,
)

#: Every typed event class, in the order the module doc lists them.
EVENT_TYPES: tuple[type[PymonEvent], ...] = (
    CheckCompleted,
    StatusChanged,
    IncidentOpened,
    IncidentEscalated,
    IncidentClosed,
    Acknowledged,
    Unacknowledged,
    MaintenanceStarted,
    MaintenanceEnded,
    Transition,
    NoticeQueued,
    NoticeSent,
    NoticeFailed,
    ConfigReloaded,
    ReloadFailed,
)

_STATUS = (EventKind.CHANGED, EventKind.CONFIRMED)
_INCIDENT: dict[
    EventKind,
    type[IncidentOpened | IncidentEscalated | IncidentClosed | Acknowledged | Unacknowledged],
] = {
    EventKind.INCIDENT_OPENED: IncidentOpened,
    EventKind.ESCALATED: IncidentEscalated,
    EventKind.INCIDENT_WORSE: IncidentEscalated,
    EventKind.INCIDENT_CLOSED: IncidentClosed,
    EventKind.ACKNOWLEDGED: Acknowledged,
    EventKind.UNACKNOWLEDGED: Unacknowledged,
}
_MAINTENANCE: dict[EventKind, type[MaintenanceStarted | MaintenanceEnded]] = {
    EventKind.MAINTENANCE_STARTED: MaintenanceStarted,
    EventKind.MAINTENANCE_ENDED: MaintenanceEnded,
}


def from_transition(event: Event, incident: Incident | None) -> PymonEvent:
    """The typed event for the rules' ``event``; ``incident`` is the service's after the step."""
    if event.kind in _STATUS:
        return StatusChanged(event.service, event)
    incident_type = _INCIDENT.get(event.kind)
    if incident_type is not None and incident is not None:
        return incident_type(event.service, incident, event)
    maintenance_type = _MAINTENANCE.get(event.kind)
    if maintenance_type is not None:
        return maintenance_type(event.service, event)
    return Transition(event.service, event)


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_NAMES = {cls: _CAMEL.sub("_", cls.__name__).lower() for cls in EVENT_TYPES}

#: Every type's label (``check_completed``...), in :data:`EVENT_TYPES` order.
TYPE_NAMES: tuple[str, ...] = tuple(_NAMES.values())


def type_name(event: PymonEvent) -> str:
    """The event's type as metrics label it: ``check_completed``, ``notice_failed``..."""
    return _NAMES[type(event)]
