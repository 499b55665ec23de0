"""The Reports page: the uptime (SLA) report of ``GET /api/v1/reports/uptime`` as a
sortable table, with a date-range form and quick links that work without JavaScript
(a plain GET form), and a CSV download of exactly the window shown."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from pymon.reports import COLUMNS, sla_counts
from pymon.web.api.reports import MAX_FILTERS, report_query
from pymon.web.engine import port_of
from pymon.web.pages.render import login_needed, render
from pymon.web.proxy import public_prefix
from pymon.web.reporting import read_report

__all__ = ["QUICK", "ROWS_PER_PAGE", "router"]

router = APIRouter()

QUICK = (("24h", "24h"), ("7d", "7d"), ("30d", "30d"), ("90d", "90d"), ("1y", "365d"))
"""The quick links: label, then the ``since`` they ask for (up to now)."""

_SORT_DEFAULT = "service"

ROWS_PER_PAGE = 500
"""Rows one page shows (the CSV link has them all): 10,000 rows are ~10 MB of HTML."""


def _sorted(rows: list[dict[str, Any]], sort: str) -> tuple[list[dict[str, Any]], str, bool]:
    """``rows`` sorted by the column ``sort`` names (``-`` first: descending), rows
    without a value last either way; the column and direction used."""
    column = sort.lstrip("-")
    if column not in COLUMNS:
        column, sort = _SORT_DEFAULT, _SORT_DEFAULT
    descending = sort.startswith("-")
    known = [r for r in rows if r[column] is not None]
    missing = [r for r in rows if r[column] is None]

    def key(row: dict[str, Any]) -> Any:
        value = row[column]
        return value.casefold() if isinstance(value, str) else value

    known.sort(key=lambda r: r["service"].casefold())
    known.sort(key=key, reverse=descending)
    return known + missing, column, descending


def _day(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


@router.get("/reports")
async def reports(
    request: Request,
    since: str = Query("", max_length=100),
    until: str = Query("", max_length=100),
    tag: list[str] = Query([], max_length=MAX_FILTERS),  # noqa: B008 - FastAPI's idiom
    service: list[str] = Query([], max_length=MAX_FILTERS),  # noqa: B008
    include_maintenance: bool = Query(False),
    sort: str = Query(_SORT_DEFAULT, max_length=100),
    page: int = Query(1, ge=1, le=1_000_000),
) -> Response:
    """The report over the window asked (by default the last 30 days), one row per
    service, met and missed targets marked, a link to the same as CSV."""
    if (login := await login_needed(request)) is not None:
        return login
    port = port_of(request)
    prefix = public_prefix(request)
    # The form's "any" sends an empty tag: it filters nothing.
    tag, service = [t for t in tag if t], [s for s in service if s]
    tags = sorted({t for s in port.config.services for t in s.tags})
    chosen = {"since": since, "until": until, "tag": tag, "service": service}
    if include_maintenance:
        chosen["include_maintenance"] = "1"

    def link(path: str, **change: Any) -> str:
        params = {**chosen, "sort": sort, "page": page, **change}
        defaults = {("sort", _SORT_DEFAULT), ("page", 1)}
        kept = [
            (k, item)
            for k, v in params.items()
            for item in (v if isinstance(v, list) else [v])
            if item not in ("", None) and (k, item) not in defaults
        ]
        return f"{prefix}{path}" + (f"?{urlencode(kept)}" if kept else "")

    context: dict[str, Any] = {
        "page": "reports",
        "tags": tags,
        "chosen": chosen,
        "quick": [(label, link("/reports", since=ago, until="", page=1)) for label, ago in QUICK],
        "columns": COLUMNS,
    }
    try:
        asked = report_query(
            port.config,
            port.now(),
            since=since or None,
            until=until or None,
            service=service,
            tag=tag,
            include_maintenance=include_maintenance,
        )
    except RequestValidationError as exc:
        problems = "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in exc.errors())
        return render(request, "reports.html", 422, error=problems, rows=[], **context)
    report = await read_report(
        port,
        asked.targets,
        asked.since,
        asked.until,
        include_maintenance=include_maintenance,
        every=asked.every,
    )
    rows, column, descending = _sorted([s.row() for s in report.services], sort)
    pages = max(math.ceil(len(rows) / ROWS_PER_PAGE), 1)
    page = min(page, pages)

    def sort_link(name: str) -> str:
        flip = name == column and not descending
        return link("/reports", sort=f"-{name}" if flip else name, page=1)

    exact = {"since": repr(asked.since), "until": repr(asked.until), "format": "csv"}
    return render(
        request,
        "reports.html",
        rows=rows[(page - 1) * ROWS_PER_PAGE : page * ROWS_PER_PAGE],
        total=len(rows),
        current=page,
        pages=pages,
        previous=link("/reports", page=page - 1) if page > 1 else None,
        next=link("/reports", page=page + 1) if page < pages else None,
        since=asked.since,
        until=asked.until,
        since_day=_day(asked.since),
        # The date input's last day: the window ends at the start of the day after it.
        until_day=_day(asked.until - 1),
        counts=sla_counts(report),
        sorted_by=(column, descending),
        sort_link=sort_link,
        csv_link=link("/api/v1/reports/uptime", **exact, sort=_SORT_DEFAULT, page=1),
        **context,
    )
