"""The API's reports: ``GET /api/v1/reports/uptime``, the SLA report as JSON or CSV.

The window is ``since``..``until`` (each epoch seconds, an ISO 8601 date-time, or a
duration ago such as ``30d``; a bare date ``2026-05-31`` as ``until`` means the end
of that day), by default the last 30 days, at most 400 days, never past now. The
services are those named by ``service`` or carrying a ``tag`` (both repeatable;
neither: every service), in config order. docs/reports.md defines each column.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from pymon.config.schema import Config
from pymon.locations import split
from pymon.reports import COLUMNS, Report, Target, targets_of
from pymon.uptime import DAY
from pymon.web.api.common import READ, bad_field, errors, moment
from pymon.web.engine import port_of
from pymon.web.reporting import MAX_WINDOW, read_report

__all__ = [
    "CSV",
    "DEFAULT_WINDOW",
    "MAX_FILTERS",
    "ReportQuery",
    "csv_text",
    "filename",
    "report_query",
    "router",
]

router = APIRouter()

CSV = "text/csv"
"""The media type of the CSV answer."""

DEFAULT_WINDOW = 30 * DAY
"""How far back a report reaches when ``since`` is not given."""

MAX_FILTERS = 1000
"""The most ``service`` (and, apart, ``tag``) values one request may give."""

_NAME_LENGTH = 200
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """What a report is asked for: the window, the services, and whether maintenance counts."""

    since: float
    until: float
    targets: list[Target]
    every: bool
    include_maintenance: bool = False


def _filters(field: str, values: list[str]) -> list[str]:
    if len(values) > MAX_FILTERS:
        raise bad_field("query", field, f"at most {MAX_FILTERS} values")
    for value in values:
        if not 0 < len(value) <= _NAME_LENGTH:
            raise bad_field("query", field, f"each value has 1 to {_NAME_LENGTH} characters")
    return values


def report_query(
    config: Config,
    now: float,
    *,
    since: str | None,
    until: str | None,
    service: list[str],
    tag: list[str],
    include_maintenance: bool,
) -> ReportQuery:
    """The parameters read and checked; a 422 naming the field for a bad one."""
    names, tags = set(_filters("service", service)), set(_filters("tag", tag))
    unknown = sorted(n for n in names if config.service(n) is None)
    if unknown:
        shown = ", ".join(repr(n[:50]) for n in unknown[:5])
        raise bad_field("query", "service", f"no service named {shown}")
    high = moment("until", until, now)
    if high is not None and until is not None and _DATE.fullmatch(until.strip()):
        high += DAY
    high = now if high is None else min(high, now)
    low = moment("since", since, now)
    low = high - DEFAULT_WINDOW if low is None else low
    if high <= low:
        raise bad_field("query", "until", "must be after since (and since before now)")
    if high - low > MAX_WINDOW:
        raise bad_field("query", "since", "the window is at most 400 days")
    every = not names and not tags
    picked = [
        s
        for s in config.services
        # "Every service" is every listed one; a location check is reported when named.
        if (every and split(s.name) is None) or s.name in names or tags.intersection(s.tags)
    ]
    return ReportQuery(low, high, targets_of(picked), every, include_maintenance)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".")
    if isinstance(value, list):
        return " ".join(map(str, value))
    return str(value)


def csv_text(report: Report) -> str:
    """The report as CSV: a header row (:data:`~pymon.reports.COLUMNS`, then ``tags``),
    then one row per service; no value is written empty, floats to 6 decimals."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header = (*COLUMNS, "tags")
    writer.writerow(header)
    for row in report.services:
        values = row.row()
        writer.writerow([_cell(values[key]) for key in header])
    return out.getvalue()


def _day(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y%m%d")


def filename(report: Report) -> str:
    """``pymon-uptime-20260401-20260501.csv``: the window's first and last UTC days."""
    return f"pymon-uptime-{_day(report.since)}-{_day(report.until)}.csv"


_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the report (JSON), or with format=csv a CSV file with a header row",
        "content": {CSV: {"schema": {"type": "string"}}},
        "headers": {"Content-Disposition": {"description": "CSV: attachment; filename=..."}},
    },
    **errors(401, 403, 422),
}


@router.get(
    "/api/v1/reports/uptime",
    dependencies=READ,
    response_model=dict[str, Any],
    responses=_ANSWER,
)
async def uptime_report(
    request: Request,
    since: str | None = Query(
        None, max_length=100, description="epoch seconds, ISO 8601, or e.g. 30d (ago)"
    ),
    until: str | None = Query(
        None, max_length=100, description="epoch seconds, ISO 8601 (a date: its end), or 1h (ago)"
    ),
    service: Annotated[list[str], Query(description="a service to report on (repeatable)")] = [],  # noqa: B006 - FastAPI copies a default, it is never shared
    tag: Annotated[
        list[str], Query(description="report on services with this tag (repeatable)")
    ] = [],  # noqa: B006
    format: Literal["json", "csv"] = Query("json", description="json or csv"),
    include_maintenance: bool = Query(False, description="count time in maintenance"),
) -> Response:
    """Per service over the window: uptime % by time, downtime, incidents, the longest
    one, MTTR, MTBF, the ``sla`` target and whether it was met (docs/reports.md)."""
    port = port_of(request)
    asked = report_query(
        port.config,
        port.now(),
        since=since,
        until=until,
        service=service,
        tag=tag,
        include_maintenance=include_maintenance,
    )
    report = await read_report(
        port,
        asked.targets,
        asked.since,
        asked.until,
        include_maintenance=asked.include_maintenance,
        every=asked.every,
    )
    if format == "csv":
        return Response(
            csv_text(report),
            media_type=CSV,
            headers={"Content-Disposition": f'attachment; filename="{filename(report)}"'},
        )
    return JSONResponse(report.to_json())
