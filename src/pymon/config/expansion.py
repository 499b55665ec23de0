"""A service with ``locations`` expanded into itself and one location check per location.

The loader's last step (``load.py``): ``Config.services`` holds each such service
followed by its location checks, ``service@location``. Here, below ``pymon.locations``
(which re-exports these names and holds the rest: quorum and combining), because the
config package builds them and may not import upwards.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from pymon.config.schema import SEPARATOR, ServiceConfig

__all__ = ["SEPARATOR", "at", "expand", "split"]

#: A service with locations confirms what its locations decide at once: each location
#: has the service's own flap guard, and a second one would only delay the notice.
#: ``unknown`` (too few locations reporting) keeps the service's count: right after a
#: start or a handover the locations' results are a moment away.
_AT_ONCE = {"ok": 1, "warn": 1, "error": 1, "failed": 1}


def at(service: str, location: str) -> str:
    """The name of ``service``'s location check at ``location``: ``service@location``."""
    return f"{service}{SEPARATOR}{location}"


def split(name: str) -> tuple[str, str] | None:
    """``(service, location)`` for a location check's name, None for any other name."""
    service, sep, location = name.rpartition(SEPARATOR)
    return (service, location) if sep and service and location else None


def expand(services: Sequence[ServiceConfig]) -> tuple[ServiceConfig, ...]:
    """``services`` with a location check after each service that lists locations.

    The location check runs the service's check with its interval, timeout,
    thresholds and flap guard; it notifies nobody, depends on nothing (its node may
    not run the service's parents) and has no tags, SLA or badge of its own. The
    service keeps its settings but checks nothing itself: its thresholds and flap
    guard act per location (above), so it has no thresholds and confirms what its
    locations decide at once (``unknown`` after the service's own count).
    """
    if not any(s.locations for s in services):
        return tuple(services)
    out: list[ServiceConfig] = []
    for service in services:
        if not service.locations:
            out.append(service)
            continue
        guard = service.flap_guard.model_copy(update=_AT_ONCE)
        out.append(service.model_copy(update={"thresholds": {}, "flap_guard": guard}))
        for location in service.locations:
            out.append(
                service.model_copy(
                    update={
                        "name": at(service.name, location),
                        "notify": False,
                        "depends_on": [],
                        "locations": [],
                        "quorum": None,
                        "notify_partial": False,
                        "tags": [],
                        "badge": False,
                        "sla": None,
                        "description": f"{service.name} from {location}",
                    }
                )
            )
    return tuple(out)
