"""Locations: one service checked from several places, a problem only when a quorum
of them agree (docs/states.md, "Locations").

A service with ``locations: [a, b, c]`` becomes, at load, the service itself plus
one **location check** per listed location, named ``service@location``
(:func:`expand`). A location check is an ordinary service to the engine (its own
schedule, result, flap guard, state and history, persisted and failed over like any
other), run only by nodes of its location (docs/cluster.md, "Pools"); it never
notifies and is not listed among the services. The service itself checks nothing:
on its schedule, and at once when a location's confirmed status changes, its node
reads the latest state of each location check and :func:`combine` decides its
status. Its notices, incidents and acknowledgements are the service's alone.

Pure: no I/O, no clock of its own.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

# The names and the expansion live in the config package, which builds the location
# checks at load (and may not import this module); they are part of this one's face.
from pymon.config.expansion import SEPARATOR, at, expand, split
from pymon.config.schema import ServiceConfig
from pymon.model import Status

__all__ = [
    "SEPARATOR",
    "Combined",
    "LocationResult",
    "at",
    "combine",
    "expand",
    "listed",
    "location_names",
    "max_age",
    "quorum_of",
    "split",
]


class _Named(Protocol):
    @property
    def name(self) -> str: ...


_N = TypeVar("_N", bound=_Named)


def listed(items: Iterable[_N]) -> list[_N]:
    """``items`` (services, their configs or views) without the location checks, in
    order: what is listed and counted wherever services are (the API's list, the
    pages, the status counts, ``/metrics``' per-service series, reports)."""
    return [item for item in items if split(item.name) is None]


def quorum_of(listed: int, quorum: int | Literal["all"] | None) -> int:
    """How many of ``listed`` locations must agree: ``quorum``, ``all`` of them, or a
    majority when not set."""
    if quorum == "all":
        return listed
    if quorum is None:
        return listed // 2 + 1
    return quorum


def max_age(service: ServiceConfig) -> float:
    """A location's result older than this counts as absent: two intervals."""
    return 2 * service.interval


def location_names(services: Iterable[ServiceConfig]) -> list[str]:
    """Every location some service lists, sorted (the cluster's pools, in order)."""
    return sorted({loc for s in services for loc in s.locations})


@dataclass(frozen=True, slots=True)
class LocationResult:
    """A location check's latest state, as one location sees the service.

    ``status`` is its confirmed status (after its own flap guard; None before any
    result reached it); ``node`` runs it now (None: no live node holds it).
    """

    location: str
    status: Status | None = None
    message: str = ""
    last_check: float | None = None
    duration: float = 0.0
    node: str | None = None


@dataclass(frozen=True, slots=True)
class Combined:
    """What the locations decide together.

    ``status``/``message``: the service's result. ``partial``: some present location
    sees a problem the quorum does not confirm (``partial_locations``, sorted).
    ``present``: the locations whose result counts (fresh enough), in listed order;
    ``absent`` maps each other listed location to why it does not count.
    """

    status: Status
    message: str
    partial: bool = False
    partial_locations: tuple[str, ...] = ()
    present: tuple[str, ...] = ()
    absent: Mapping[str, str] = field(default_factory=dict)


def combine(
    listed: Sequence[str],
    results: Mapping[str, LocationResult],
    *,
    quorum: int,
    now: float,
    max_age: float,
    announced: Container[str],
    notify_partial: bool = False,
) -> Combined:
    """Decide a service's status from its locations' latest results.

    A location counts when its result is confirmed and at most ``max_age`` old;
    otherwise it is absent (never announced by any node, no result yet, or too
    old). With fewer than ``quorum`` present the status is ``unknown``, with the
    reason, never ``ok``. Else the status is the worst one that at least ``quorum``
    present locations see or see worse (a quorum agreeing on a problem); a problem
    seen by fewer is *partial*: the status stays ``ok`` unless ``notify_partial``,
    when it is the worst status seen (still flagged partial).
    """
    present: list[LocationResult] = []
    absent: dict[str, str] = {}
    for location in listed:
        result = results.get(location)
        if location not in announced:
            absent[location] = "no node has ever announced this location"
        elif result is None or result.status is None or result.last_check is None:
            absent[location] = "no result yet"
        elif now - result.last_check > max_age:
            absent[location] = f"last result {now - result.last_check:.0f}s old"
        else:
            present.append(result)
    names = tuple(r.location for r in present)
    if len(present) < quorum:
        why = "; ".join(f"{loc}: {reason}" for loc, reason in absent.items())
        return Combined(
            Status.UNKNOWN,
            f"{len(present)} of {len(listed)} locations reporting, quorum {quorum} ({why})",
            present=names,
            absent=absent,
        )
    problems = [r for r in present if r.status is not None and r.status.is_problem]
    agreed = _agreed([r.status for r in problems if r.status is not None], quorum)
    seen = _seen_from(present)
    if agreed is not None:
        return Combined(agreed, seen, present=names, absent=absent)
    partial = tuple(sorted(r.location for r in problems))
    if partial and notify_partial:
        worst = Status.worst(*(r.status for r in problems if r.status is not None))
        return Combined(worst, f"partial: {seen}", True, partial, names, absent)
    message = f"partial: {seen}" if partial else seen
    return Combined(Status.OK, message, bool(partial), partial, names, absent)


def _agreed(statuses: Sequence[Status], quorum: int) -> Status | None:
    """The worst status ``s`` such that ``quorum`` statuses are ``s`` or worse."""
    ranked = sorted(statuses, key=lambda s: s.severity, reverse=True)
    return ranked[quorum - 1] if len(ranked) >= quorum else None


def _seen_from(present: Sequence[LocationResult]) -> str:
    """``down from eu-west, us-east; ok from ap-south``, worst first, then what each
    location with a problem said (``eu-west: connection refused``)."""
    by: dict[str, tuple[int, list[str]]] = {}
    for result in present:
        if result.status is not None:
            word = _word(result.status)
            rank, locations = by.get(word, (0, []))
            by[word] = (max(rank, result.status.severity), [*locations, result.location])
    parts = sorted(by.items(), key=lambda item: -item[1][0])
    seen = "; ".join(f"{word} from {', '.join(locs)}" for word, (_, locs) in parts)
    said = [
        f"{r.location}: {r.message}"
        for r in present
        if r.status is not None and r.status.is_problem and r.message
    ]
    return f"{seen} ({'; '.join(said)})" if said else seen


def _word(status: Status) -> str:
    return "down" if status in (Status.ERROR, Status.FAILED) else status.value
