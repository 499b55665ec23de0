"""SLA reports: the pure report over uptimes summarized from seeded buckets, and
incidents (which bucket widths a window reads: tests/test_rollup_spans.py, and through
the port tests/web/test_uptime_api.py)."""

from __future__ import annotations

import pytest

from pymon.model import Incident, Status
from pymon.reports import Report, Target, build
from pymon.uptime import DAY, HOUR, Bucket, by_service, summarize

#: A UTC midnight (2026-05-28 00:00 UTC), so the windows below are placed on purpose.
MIDNIGHT = 1_779_926_400.0
#: A window that starts and ends off the day (and hour) boundaries: 5 h 30 min before
#: MIDNIGHT to two days and 3 h after it.
SINCE = MIDNIGHT - 5.5 * HOUR
UNTIL = MIDNIGHT + 2 * DAY + 3 * HOUR


def report(
    targets: list[Target],
    buckets: list[Bucket],
    incidents: list[Incident],
    since: float,
    until: float,
    *,
    include_maintenance: bool = False,
) -> Report:
    """The report of ``targets`` with each service's uptime summarized from ``buckets``."""
    uptimes = {
        name: summarize(name, found, since, until, include_maintenance=include_maintenance)
        for name, found in by_service(buckets).items()
    }
    return build(targets, uptimes, incidents, since, until, include_maintenance=include_maintenance)


def hour(service: str, start: float, **seconds: float) -> Bucket:
    return Bucket(service, start, HOUR, checks=60, ok_checks=60, seconds=seconds)


def day(service: str, start: float, **seconds: float) -> Bucket:
    return Bucket(service, start, DAY, checks=1440, seconds=seconds)


def hours_between(service: str, since: float, until: float) -> list[Bucket]:
    """An all-ok hour bucket for every hour from ``since``'s hour up to ``until``."""
    start = since // HOUR * HOUR
    out = []
    while start < until:
        out.append(hour(service, start, ok=HOUR))
        start += HOUR
    return out


def incident(service: str, opened: float, closed: float | None, ident: str = "i") -> Incident:
    return Incident(ident, service, opened, Status.FAILED, Status.FAILED, closed_at=closed)


def test_uptime_is_by_time_and_leaves_maintenance_out_unless_asked() -> None:
    buckets = [
        Bucket("db", MIDNIGHT, HOUR, seconds={"ok": 2400, "error": 600}, maintenance={"error": 600})
    ]
    until = MIDNIGHT + HOUR
    out = report([Target("db")], buckets, [], MIDNIGHT, until).services[0]
    assert out.uptime.uptime_pct == pytest.approx(100 * 2400 / 3000)
    assert out.row()["maintenance_minutes"] == pytest.approx(10)
    assert out.row()["downtime_minutes"] == pytest.approx(10)
    counted = report([Target("db")], buckets, [], MIDNIGHT, until, include_maintenance=True)
    row = counted.services[0].row()
    assert row["uptime_pct"] == pytest.approx(100 * 2400 / 3600)
    assert row["downtime_minutes"] == pytest.approx(20)


def test_unknown_time_and_missing_time_are_on_neither_side() -> None:
    buckets = [Bucket("db", MIDNIGHT, HOUR, seconds={"ok": 1200, "unknown": 600})]
    row = report([Target("db")], buckets, [], MIDNIGHT, MIDNIGHT + 2 * HOUR).services[0].row()
    assert row["uptime_pct"] == pytest.approx(100.0)
    assert row["unknown_minutes"] == pytest.approx(10)
    assert row["no_data_minutes"] == pytest.approx(90)


def test_incidents_are_clipped_to_the_window_and_give_mttr_and_mtbf() -> None:
    since, until = MIDNIGHT, MIDNIGHT + DAY
    buckets = [day("web", MIDNIGHT, ok=DAY - 3600, error=3600)]
    incidents = [
        # Opened before the window, closed 30 min into it: 90 min long, 30 inside.
        incident("web", since - HOUR, since + 1800, "a"),
        # Wholly inside: 20 min.
        incident("web", since + 5 * HOUR, since + 5 * HOUR + 1200, "b"),
        # Still open, 10 min before the window's end.
        incident("web", until - 600, None, "c"),
        # Another service's, and one that closed before the window: not counted.
        incident("db", since + HOUR, since + 2 * HOUR, "d"),
        incident("web", since - 3 * HOUR, since - 2 * HOUR, "e"),
    ]
    out = report([Target("web")], buckets, incidents, since, until).services[0]
    row = out.row()
    assert row["incidents"] == 3
    assert row["longest_incident_minutes"] == pytest.approx(30)
    # Closed inside the window: a (90 min, whole length) and b (20 min).
    assert row["mttr_minutes"] == pytest.approx(55)
    # Failures that began inside the window: b and c; up time 23 h.
    assert row["mtbf_minutes"] == pytest.approx(23 * 60 / 2)


def test_without_incidents_mttr_and_mtbf_are_none() -> None:
    row = report([Target("web")], [day("web", MIDNIGHT, ok=DAY)], [], MIDNIGHT, MIDNIGHT + DAY)
    only = row.services[0].row()
    assert (only["incidents"], only["longest_incident_minutes"]) == (0, None)
    assert (only["mttr_minutes"], only["mtbf_minutes"]) == (None, None)


def test_the_target_is_met_missed_absent_or_not_judged() -> None:
    # 86.4 s down in a day: 99.9 % exactly.
    buckets = [
        day("exact", MIDNIGHT, ok=DAY - 86.4, error=86.4),
        day("worse", MIDNIGHT, ok=DAY - 100, error=100),
        day("free", MIDNIGHT, ok=DAY - 100, error=100),
    ]
    targets = [
        Target("exact", 99.9),
        Target("worse", 99.9),
        Target("free"),
        Target("silent", 99.9),
    ]
    judged = report(targets, buckets, [], MIDNIGHT, MIDNIGHT + DAY)
    assert [(r.service, r.sla_status) for r in judged.services] == [
        ("exact", "met"),
        ("worse", "missed"),
        ("free", "no_target"),
        ("silent", "no_data"),
    ]
    assert judged.to_json()["services"][1]["sla"] == 99.9
