"""A status page's content, built from the engine's port: what the HTML and the JSON
forms both show (docs/status-pages.md).

Only public things go in: the page's own texts, components' public names, their
states in the public vocabulary, uptime figures, times, acknowledgement comments
and maintenance windows' names (never their comments: those are written for the
operators). A service's name, host, URL, tags and check message never go in, except
the message when the page sets ``show_details``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from pymon.engine.maintenance import matches, occurrences_between
from pymon.model import Status
from pymon.uptime import DAY, Bucket, bucket_start, by_service, summarize
from pymon.web.public.vocabulary import (
    PublicState,
    component_state,
    overall,
    service_state,
    status_state,
)

if TYPE_CHECKING:
    from pymon.config.pages import StatusComponent, StatusPage
    from pymon.engine.ports import EnginePort, ServiceView
    from pymon.web.public.exposure import Exposure

__all__ = [
    "AHEAD",
    "DAYS",
    "Board",
    "ComponentView",
    "DayBar",
    "GroupView",
    "IncidentNote",
    "MaintenanceNote",
    "build_board",
]

DAYS: Final = 90
"""Bars per component: one per UTC day, today the last."""

AHEAD: Final = 7 * DAY
"""How far ahead a page lists planned maintenance."""

_MAX_NOTES: Final = 50  # incidents, and maintenance occurrences, listed at most


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass(frozen=True, slots=True)
class DayBar:
    """One component's UTC day (``date``: ``2026-05-28``): its worst state, uptime and
    time in maintenance (``state`` is no data when none of its services was checked
    that day), and its tooltip (``title``) and JSON form (``doc``), made once with it:
    a page has up to 45,000 bars, most of them the same "no data" of each day."""

    date: str
    state: PublicState
    uptime_pct: float | None
    maintenance: float
    title: str
    doc: Mapping[str, Any]

    @classmethod
    def of(
        cls, date: str, state: PublicState, uptime_pct: float | None, maintenance: float
    ) -> DayBar:
        """The day with its tooltip: the date, then what the day was."""
        parts = [date + ":"]
        if state is PublicState.NO_DATA and uptime_pct is None and not maintenance:
            parts.append("no data")
        else:
            if uptime_pct is not None:
                parts.append(f"{uptime_pct:.2f} % up,")
            parts.append(state.label.lower())
            if maintenance:
                parts.append(f"(maintenance {round(maintenance / 60)} min)")
        doc = {
            "date": date,
            "state": state.value,
            "uptime_pct": _pct(uptime_pct),
            "maintenance_minutes": round(maintenance / 60, 1),
        }
        return cls(date, state, uptime_pct, maintenance, " ".join(parts), doc)


@dataclass(frozen=True, slots=True)
class ComponentView:
    """One component: public name, state now, uptime over the bars' days, the bars."""

    name: str
    state: PublicState
    uptime_pct: float | None
    days: Sequence[DayBar]
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The component in the page's JSON form (``message``: null but with show_details)."""
        return {
            "name": self.name,
            "state": self.state.value,
            "uptime_pct": _pct(self.uptime_pct),
            "message": self.message,
            "days": [day.doc for day in self.days],
        }


@dataclass(frozen=True, slots=True)
class GroupView:
    """A group of components and its overall state."""

    name: str
    state: PublicState
    components: Sequence[ComponentView]

    def to_json(self) -> dict[str, Any]:
        """The group in the page's JSON form."""
        return {
            "name": self.name,
            "state": self.state.value,
            "components": [c.to_json() for c in self.components],
        }


@dataclass(frozen=True, slots=True)
class IncidentNote:
    """An open incident as an update: the components hit, since when, how they are now,
    and the acknowledgement's comment (when someone acknowledged it with one)."""

    components: Sequence[str]
    since: float
    state: PublicState
    acknowledged: bool
    comment: str | None

    def to_json(self) -> dict[str, Any]:
        """The update in the page's JSON form."""
        return {
            "components": list(self.components),
            "since": _iso(self.since),
            "state": self.state.value,
            "acknowledged": self.acknowledged,
            "comment": self.comment,
        }


@dataclass(frozen=True, slots=True)
class MaintenanceNote:
    """One occurrence of a maintenance window that touches the page's components."""

    name: str
    start: float
    end: float
    in_progress: bool
    components: Sequence[str]

    def to_json(self) -> dict[str, Any]:
        """The occurrence in the page's JSON form."""
        return {
            "name": self.name,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "in_progress": self.in_progress,
            "components": list(self.components),
        }


@dataclass(frozen=True, slots=True)
class Board:
    """Everything one status page shows, read at ``at``."""

    page: StatusPage
    at: float
    state: PublicState
    groups: Sequence[GroupView]
    incidents: Sequence[IncidentNote]
    maintenance: Sequence[MaintenanceNote]

    @property
    def headline(self) -> str:
        """The page's summary: ``All systems operational``, ``Partial system outage``..."""
        return self.state.headline

    def to_json(self) -> dict[str, Any]:
        """The page's JSON form (docs/api.md, Status pages)."""
        return {
            "slug": self.page.slug,
            "title": self.page.title,
            "description": self.page.description,
            "logo": self.page.logo,
            "generated_at": _iso(self.at),
            "status": {"state": self.state.value, "description": self.headline},
            "groups": [group.to_json() for group in self.groups],
            "incidents": [note.to_json() for note in self.incidents],
            "maintenance": [note.to_json() for note in self.maintenance],
        }


async def build_board(port: EnginePort, page: StatusPage, exposure: Exposure) -> Board:
    """``page``'s content now: states from the port's services, bars from its day
    buckets, updates from its open incidents and windows."""
    now = port.now()
    first_day = bucket_start(now, DAY) - (DAYS - 1) * DAY
    names = exposure.services_on(page)
    wanted = set(names)
    views = {v.name: v for v in await port.services() if v.name in wanted}
    buckets = by_service(await port.rollups(names, first_day, now, DAY))
    days = [first_day + k * DAY for k in range(DAYS)]
    # A day without a bucket is the same bar in every component: made once.
    empty = {start: DayBar.of(_date(start), PublicState.NO_DATA, None, 0.0) for start in days}
    groups = []
    for group in page.groups:
        components = [
            _component(c, exposure.services_of(c), views, buckets, empty, page.show_details)
            for c in group.components
        ]
        groups.append(GroupView(group.name, overall(c.state for c in components), components))
    shown_in = _shown_in(page, exposure)
    return Board(
        page=page,
        at=now,
        state=overall(g.state for g in groups),
        groups=groups,
        incidents=await _incidents(port, views, shown_in, _states(groups)),
        maintenance=_maintenance(port, page, exposure, views, now),
    )


def _component(
    component: StatusComponent,
    members: Sequence[str],
    views: Mapping[str, ServiceView],
    buckets: Mapping[str, list[Bucket]],
    empty: Mapping[float, DayBar],
    details: bool,
) -> ComponentView:
    present = [views[name] for name in members if name in views]
    state = component_state([service_state(v.state) for v in present])
    per_day: list[dict[float, Bucket]] = [
        {b.start: b for b in buckets.get(v.name, [])} for v in present
    ]
    bars = [
        _day(bar, found) if (found := [m[start] for m in per_day if start in m]) else bar
        for start, bar in empty.items()
    ]
    # To the end of today: a bucket holds no time to come, so today's counts whole.
    since, until = min(empty), max(empty) + DAY
    uptimes = [summarize(v.name, buckets.get(v.name, []), since, until) for v in present]
    message = None
    if details:
        messages = dict.fromkeys(v.state.message for v in present if v.state.message)
        message = "; ".join(messages)
    return ComponentView(
        name=component.name,
        state=state,
        uptime_pct=_lowest(u.uptime_pct for u in uptimes),
        days=bars,
        message=message,
    )


def _lowest(values: Any) -> float | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def _date(start: float) -> str:
    return datetime.fromtimestamp(start, UTC).date().isoformat()


def _day(empty: DayBar, buckets: Sequence[Bucket]) -> DayBar:
    """A day of a component from its services' buckets of that day: the worst status
    any had, the lowest uptime, the longest time in maintenance."""
    # A day with no result of its own may still be covered by one taken the day before.
    worsts = [b.worst for b in buckets if b.worst is not None] + [
        Status(status)
        for b in buckets
        for spent in (b.seconds, b.maintenance)
        for status, seconds in spent.items()
        if seconds > 0
    ]
    uptime = _lowest(summarize(b.service, [b], b.start, b.end).uptime_pct for b in buckets)
    held = max((sum(b.maintenance.values()) for b in buckets), default=0.0)
    state = status_state(Status.worst(*worsts) if worsts else None)
    return DayBar.of(empty.date, state, uptime, held)


def _shown_in(page: StatusPage, exposure: Exposure) -> dict[str, list[str]]:
    """Each service of the page -> the public names of the components showing it."""
    out: dict[str, list[str]] = {}
    for component in page.components():
        for name in exposure.services_of(component):
            names = out.setdefault(name, [])
            if component.name not in names:
                names.append(component.name)
    return out


def _states(groups: Sequence[GroupView]) -> dict[str, PublicState]:
    """Each component's name -> its state (the worst, for a name used twice)."""
    out: dict[str, PublicState] = {}
    for group in groups:
        for component in group.components:
            out[component.name] = overall(
                [component.state, out.get(component.name, component.state)]
            )
    return out


async def _incidents(
    port: EnginePort,
    views: Mapping[str, ServiceView],
    shown_in: Mapping[str, list[str]],
    states: Mapping[str, PublicState],
) -> list[IncidentNote]:
    """The open incidents of the page's services, newest first, each in the state of
    the components it hits (a page says "Web tier: partial outage", as its bars do)."""
    notes = []
    for incident in await port.open_incidents():
        if incident.service not in views or incident.service not in shown_in:
            continue
        ack = incident.ack
        notes.append(
            IncidentNote(
                components=shown_in[incident.service],
                since=incident.opened_at,
                state=overall(states[name] for name in shown_in[incident.service]),
                acknowledged=ack is not None,
                comment=(ack.comment or None) if ack is not None else None,
            )
        )
    notes.sort(key=lambda n: -n.since)
    return notes[:_MAX_NOTES]


def _maintenance(
    port: EnginePort,
    page: StatusPage,
    exposure: Exposure,
    views: Mapping[str, ServiceView],
    now: float,
) -> list[MaintenanceNote]:
    notes = []
    for held in port.windows():
        window = held.window
        touched = [
            component.name
            for component in page.components()
            if any(
                matches(window, name, views[name].config.tags)
                for name in exposure.services_of(component)
                if name in views
            )
        ]
        if not touched:
            continue
        for start, end in occurrences_between(window, now, now + AHEAD, limit=5):
            notes.append(
                MaintenanceNote(
                    name=window.name or "Planned maintenance",
                    start=start,
                    end=end,
                    in_progress=start <= now,
                    components=list(dict.fromkeys(touched)),
                )
            )
    notes.sort(key=lambda n: (n.start, n.name))
    return notes[:_MAX_NOTES]
