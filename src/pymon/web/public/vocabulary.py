"""The public vocabulary of status pages and badges, and how pymon's statuses map to it.

Status pages speak as hosted status pages do: a component is *operational*, has
*degraded performance*, a *partial outage* or a *major outage*, or is *under
maintenance*; pymon adds *no data* for a component none of whose services has a
verdict yet (or whose every service is disabled), rather than calling it operational.

One service (its confirmed status: a single stray result does not move a public page):

============================  ========================
pymon                         public
============================  ========================
in maintenance (any status)   under maintenance
``ok``                        operational
``warn``                      degraded performance
``error``                     partial outage
``failed``                    major outage
``unknown``, ``disabled``     no data
============================  ========================

A component of several services (``tags``): the services with no data are left out;
when every other one is under maintenance the component is; when every one not in
maintenance is down (``error`` or ``failed``) it is a major outage; when some but not
all are down it is a partial outage (whatever their statuses: the rest still serve);
else the worst of them wins (degraded over operational). A group, and the page, take
the worst of their components (no data counting least).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum

from pymon.model import ServiceState, Status

__all__ = ["PublicState", "component_state", "overall", "service_state", "status_state"]


class PublicState(StrEnum):
    """A component's state as a status page shows it (its value is the JSON's)."""

    OPERATIONAL = "operational"
    DEGRADED = "degraded_performance"
    PARTIAL = "partial_outage"
    MAJOR = "major_outage"
    MAINTENANCE = "under_maintenance"
    NO_DATA = "no_data"

    @property
    def label(self) -> str:
        """How the page writes it: ``Partial outage``."""
        return _LABELS[self]

    @property
    def rank(self) -> int:
        """Rank for "the worst wins": no data < operational < maintenance < degraded <
        partial < major."""
        return _RANK[self]

    @property
    def headline(self) -> str:
        """The page's summary when this is the worst of its components."""
        return _HEADLINES[self]

    @property
    def is_down(self) -> bool:
        """A partial or major outage."""
        return self in (PublicState.PARTIAL, PublicState.MAJOR)


_LABELS = {
    PublicState.OPERATIONAL: "Operational",
    PublicState.DEGRADED: "Degraded performance",
    PublicState.PARTIAL: "Partial outage",
    PublicState.MAJOR: "Major outage",
    PublicState.MAINTENANCE: "Under maintenance",
    PublicState.NO_DATA: "No data",
}
_RANK = {
    PublicState.NO_DATA: 0,
    PublicState.OPERATIONAL: 1,
    PublicState.MAINTENANCE: 2,
    PublicState.DEGRADED: 3,
    PublicState.PARTIAL: 4,
    PublicState.MAJOR: 5,
}
_HEADLINES = {
    PublicState.OPERATIONAL: "All systems operational",
    PublicState.DEGRADED: "Degraded performance",
    PublicState.PARTIAL: "Partial system outage",
    PublicState.MAJOR: "Major system outage",
    PublicState.MAINTENANCE: "Maintenance in progress",
    PublicState.NO_DATA: "No data yet",
}
_BY_STATUS = {
    Status.OK: PublicState.OPERATIONAL,
    Status.WARN: PublicState.DEGRADED,
    Status.ERROR: PublicState.PARTIAL,
    Status.FAILED: PublicState.MAJOR,
    Status.UNKNOWN: PublicState.NO_DATA,
    Status.DISABLED: PublicState.NO_DATA,
}


def status_state(status: Status | None) -> PublicState:
    """The public state of a plain status (a day's worst; None: no data)."""
    return PublicState.NO_DATA if status is None else _BY_STATUS[status]


def service_state(state: ServiceState) -> PublicState:
    """One service's public state now (see the module's table)."""
    if state.status is Status.DISABLED:
        return PublicState.NO_DATA
    if state.maintenance:
        return PublicState.MAINTENANCE
    confirmed = state.confirmed_status if state.confirmed_status is not None else state.status
    return _BY_STATUS[confirmed]


def component_state(states: Sequence[PublicState]) -> PublicState:
    """A component's state from its services' (see the module's docstring)."""
    known = [s for s in states if s is not PublicState.NO_DATA]
    if not known:
        return PublicState.NO_DATA
    if len(known) == 1:
        return known[0]
    serving = [s for s in known if s is not PublicState.MAINTENANCE]
    if not serving:
        return PublicState.MAINTENANCE
    down = [s for s in serving if s.is_down]
    if down and len(down) == len(serving):
        return PublicState.MAJOR
    if down:
        return PublicState.PARTIAL
    return overall(serving)


def overall(states: Iterable[PublicState]) -> PublicState:
    """The worst of ``states`` (a group's, a page's); no data when there are none."""
    return max(states, key=lambda s: s.rank, default=PublicState.NO_DATA)
