"""The engine's values as the web shows them in JSON: a service, an incident, a
maintenance window, a notice's delivery, the outbox's counters.

The API answers with these, the pages render them and the live stream sends them,
so a service looks the same wherever it is read. Events show as
:meth:`pymon.model.Event.to_dict`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pymon.engine.maintenance import active_at
from pymon.locations import quorum_of
from pymon.model import ServiceState

if TYPE_CHECKING:
    from pymon.config.windows import MaintenanceWindow
    from pymon.engine.ports import NodeView, OutboxFigures, ServiceView
    from pymon.model import Incident
    from pymon.store.base import Delivery

__all__ = [
    "SERVICE_FIELDS",
    "delivery_json",
    "incident_json",
    "locations_json",
    "node_json",
    "outbox_json",
    "service_json",
    "window_json",
]

# What an incident's own dict says that the web leaves out: its service (the row it
# rides on names it) and whether a notice is owed (the engine's business).
_INCIDENT_UNSHOWN = frozenset({"service", "pending"})


def incident_json(incident: Incident | None) -> dict[str, Any] | None:
    """An incident as the web shows it (None stays None): :meth:`Incident.to_dict`
    without ``service`` and ``pending``."""
    if incident is None:
        return None
    return {k: v for k, v in incident.to_dict().items() if k not in _INCIDENT_UNSHOWN}


SERVICE_FIELDS = (
    *ServiceState("").to_dict(),
    *("acknowledged", "escalated", "type", "description", "enabled", "interval", "tags", "node"),
    *("locations", "partial", "partial_locations", "quorum"),
)
"""The keys of :func:`service_json`, in its order (``incident``, the state's id there,
becomes the incident itself)."""


def locations_json(view: ServiceView) -> dict[str, dict[str, Any]]:
    """Each location ``view``'s service lists, in listed order, as it sees the service:
    its latest result (``status`` null before any), the node running its check, and
    whether it counts now (``present``) or why not (``absent_reason``)."""
    combined = view.combined
    shown: dict[str, dict[str, Any]] = {}
    for location in view.config.locations:
        result = view.locations.get(location)
        present = combined is not None and location in combined.present
        if present or combined is None:
            # Not combined yet: the service's node has not decided since it started.
            why = None if present else "not decided yet"
        else:
            why = combined.absent.get(location, "")
        shown[location] = {
            "status": None if result is None or result.status is None else result.status.value,
            "message": "" if result is None else result.message,
            "last_check": None if result is None else result.last_check,
            "node": None if result is None else result.node,
            "duration": None if result is None else result.duration,
            "present": present,
            "absent_reason": why,
        }
    return shown


def service_json(view: ServiceView) -> dict[str, Any]:
    """A service as the API, the pages and the live stream show it, with the ``node``
    that runs it (null while nobody holds its shard) and, for a service with
    locations, each location's latest result, the *partial* flag and the effective
    ``quorum`` (null without locations)."""
    service, state, incident = view.config, view.state, view.incident
    return {
        **state.to_dict(),
        "acknowledged": incident is not None and incident.ack is not None,
        "escalated": incident is not None and incident.escalated,
        "incident": incident_json(incident),
        "type": service.type,
        "description": service.description,
        "enabled": service.enabled,
        "interval": service.interval,
        "tags": service.tags,
        "node": view.node,
        "locations": locations_json(view) if service.locations else {},
        "partial": view.partial,
        "partial_locations": list(view.partial_locations),
        "quorum": quorum_of(len(service.locations), service.quorum) if service.locations else None,
    }


def node_json(node: NodeView) -> dict[str, Any]:
    """A node of the cluster as the API and the pages show it."""
    return {
        "name": node.name,
        "host": node.host,
        "pid": node.pid,
        "location": node.location,
        "alive": node.alive,
        "shards": node.shards,
        "heartbeat_age": round(node.heartbeat_age, 3),
        "config_checksum": node.config_checksum,
        "checks_per_s": round(node.checks_per_s, 3),
    }


def window_json(window: MaintenanceWindow, source: str, now: float) -> dict[str, Any]:
    """A maintenance window as the API shows it, with ``active`` (covering now) and
    ``source`` (``config``, or ``api`` for one added at run time and deletable)."""
    span = active_at(window, now)
    return {
        **window.model_dump(mode="json", by_alias=True, exclude_none=True),
        "kind": window.kind,
        "source": source,
        "active": span is not None,
        "active_until": None if span is None else span[1],
    }


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    """One notice's delivery to one channel, with how it is going."""
    notice = delivery.notice
    return {
        "key": notice.key,
        "channel": delivery.channel,
        "state": delivery.state,
        "service": notice.service,
        "kind": notice.kind.value,
        "status": notice.status.value,
        "message": notice.message,
        "at": notice.at,
        "incident": notice.incident,
        "attempts": delivery.attempts,
        "next_at": delivery.next_at if delivery.state == "pending" else None,
        "delivered_at": delivery.delivered_at,
        "failed_at": delivery.failed_at,
        "error": delivery.error,
    }


def outbox_json(outbox: OutboxFigures) -> dict[str, Any]:
    """The outbox's counters since start."""
    return {
        "sent": outbox.sent,
        "failed_attempts": outbox.failed_attempts,
        "gave_up": outbox.gave_up,
        "in_flight": outbox.in_flight,
    }
