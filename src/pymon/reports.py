"""SLA reports: per service over ``since``..``until``, its uptime by time, downtime,
incidents, MTTR, MTBF and whether it met its ``sla`` target (docs/reports.md).

Pure: the buckets (:mod:`pymon.uptime`) and incidents come in, the report goes out.
What to read is :func:`pymon.uptime.layout`: **day** buckets for the whole UTC days inside the
window and **hour** buckets for its two edges, so a year reads ~365 rows per service
rather than 8,760, and a window that does not start or end on a day boundary is as
exact as an hour (an hour bucket cut by the window counts for its share).

The definitions (each column of docs/reports.md):

* ``uptime_pct``: up time / (up + down time), by time, from the buckets
  (:func:`pymon.uptime.summarize`): maintenance left out unless
  ``include_maintenance``, unknown and disabled time and time without data on
  neither side. None when the window holds no up or down time at all.
* ``downtime_minutes``: down time (``error``, ``failed``) in the window.
* ``incidents``: incidents that overlap the window (open at some moment of it).
* ``longest_incident_minutes``: the longest of those, **clipped** to the window (an
  open incident counts up to the window's end).
* ``mttr_minutes`` (mean time to recover): the mean full length, open to close, of
  the incidents that **closed** inside the window; None when none closed.
* ``mtbf_minutes`` (mean time between failures): up time in the window divided by
  the number of incidents that **opened** inside it; None when none opened.
* ``sla_status``: ``met`` when ``uptime_pct`` >= the target, ``missed`` below it,
  ``no_target`` without an ``sla``, ``no_data`` with a target but no uptime to judge.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pymon.model import Incident
from pymon.uptime import Uptime

__all__ = [
    "COLUMNS",
    "Report",
    "ServiceReport",
    "SlaStatus",
    "Target",
    "build",
    "sla_counts",
    "targets_of",
]

SlaStatus = Literal["met", "missed", "no_target", "no_data"]
"""Whether a service met its target over the window."""

#: The report's columns, in the order the CSV and the tables show them.
COLUMNS: tuple[str, ...] = (
    "service",
    "uptime_pct",
    "sla",
    "sla_status",
    "downtime_minutes",
    "incidents",
    "longest_incident_minutes",
    "mttr_minutes",
    "mtbf_minutes",
    "maintenance_minutes",
    "unknown_minutes",
    "no_data_minutes",
    "checks",
)


@dataclass(frozen=True, slots=True)
class Target:
    """A service the report covers: its name, tags and uptime target (None: none)."""

    service: str
    sla: float | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceReport:
    """One service's row of the report (times in seconds; the row says minutes)."""

    target: Target
    uptime: Uptime
    incidents: int = 0
    longest_incident: float | None = None
    mttr: float | None = None
    mtbf: float | None = None

    @property
    def service(self) -> str:
        """The service's name."""
        return self.target.service

    @property
    def sla_status(self) -> SlaStatus:
        """``met``, ``missed``, ``no_target`` or ``no_data`` (see the module's docstring)."""
        target, pct = self.target.sla, self.uptime.uptime_pct
        if target is None:
            return "no_target"
        if pct is None:
            return "no_data"
        # A hair of float noise must not turn 99.9 % exactly into a miss.
        return "met" if pct + 1e-9 >= target else "missed"

    def row(self) -> dict[str, Any]:
        """The row as the API, the CSV and the page show it (keys: :data:`COLUMNS`, tags)."""
        uptime = self.uptime
        return {
            "service": self.service,
            "tags": list(self.target.tags),
            "uptime_pct": uptime.uptime_pct,
            "sla": self.target.sla,
            "sla_status": self.sla_status,
            "downtime_minutes": uptime.down / 60,
            "incidents": self.incidents,
            "longest_incident_minutes": _minutes(self.longest_incident),
            "mttr_minutes": _minutes(self.mttr),
            "mtbf_minutes": _minutes(self.mtbf),
            "maintenance_minutes": uptime.maintenance / 60,
            "unknown_minutes": uptime.unknown / 60,
            "no_data_minutes": uptime.no_data / 60,
            "checks": uptime.checks,
        }


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 60


@dataclass(frozen=True, slots=True)
class Report:
    """The report over ``since``..``until``: one :class:`ServiceReport` per service."""

    since: float
    until: float
    include_maintenance: bool
    services: tuple[ServiceReport, ...]

    def to_json(self) -> dict[str, Any]:
        """``{since, until, include_maintenance, services: [row, ...]}``."""
        return {
            "since": self.since,
            "until": self.until,
            "include_maintenance": self.include_maintenance,
            "services": [s.row() for s in self.services],
        }


def _clipped(incident: Incident, since: float, until: float) -> float:
    end = until if incident.closed_at is None else min(incident.closed_at, until)
    return max(end - max(incident.opened_at, since), 0.0)


def _service_report(
    target: Target,
    uptime: Uptime,
    incidents: Sequence[Incident],
    since: float,
    until: float,
) -> ServiceReport:
    inside = [i for i in incidents if i.opened_at < until and (i.closed_at or until) > since]
    if not inside:
        return ServiceReport(target, uptime)
    closed = [
        i.closed_at - i.opened_at
        for i in inside
        if i.closed_at is not None and since <= i.closed_at <= until
    ]
    failures = sum(1 for i in inside if i.opened_at >= since)
    return ServiceReport(
        target,
        uptime,
        incidents=len(inside),
        longest_incident=max(_clipped(i, since, until) for i in inside),
        mttr=sum(closed) / len(closed) if closed else None,
        mtbf=uptime.up / failures if failures else None,
    )


def build(
    targets: Iterable[Target],
    uptimes: Mapping[str, Uptime],
    incidents: Iterable[Incident],
    since: float,
    until: float,
    *,
    include_maintenance: bool = False,
) -> Report:
    """The report over ``since``..``until`` for ``targets``, in their order.

    ``uptimes`` are the services' uptimes over the window (:func:`pymon.uptime.total`
    of the buckets :func:`pymon.uptime.layout` says to read, summarized with
    ``include_maintenance``); ``incidents`` theirs that overlap the window. A service
    with neither is all *no data*.
    """
    troubles: dict[str, list[Incident]] = {}
    for incident in incidents:
        troubles.setdefault(incident.service, []).append(incident)
    nothing = until - since
    rows = tuple(
        _service_report(
            target,
            uptimes.get(target.service)
            or Uptime(target.service, since, until, no_data=max(nothing, 0.0)),
            troubles.get(target.service, ()),
            since,
            until,
        )
        for target in targets
    )
    return Report(since, until, include_maintenance, rows)


def targets_of(services: Iterable[Any]) -> list[Target]:
    """:class:`Target` per service config (anything with ``name``, ``sla``, ``tags``)."""
    return [Target(s.name, s.sla, tuple(s.tags)) for s in services]


def sla_counts(report: Report) -> Mapping[SlaStatus, int]:
    """How many services of ``report`` met, missed, had no target, had no data."""
    counts: dict[SlaStatus, int] = {"met": 0, "missed": 0, "no_target": 0, "no_data": 0}
    for row in report.services:
        counts[row.sla_status] += 1
    return counts
