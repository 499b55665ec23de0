"""A service's uptime over a window: ``GET /api/v1/services/{name}/uptime``.

``window`` (``24h``, ``7d``, ``30d``, ``90d``, ``1y`` or any duration; 30 days when
neither it nor ``since`` is given) ends at ``until`` (now by default); or
``since``/``until`` as epoch seconds, ISO 8601 or a duration ago. At most 400 days.
Computed by time from the rollups (docs/uptime.md); maintenance is left out of both
sides unless ``include_maintenance=true``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from pymon.web.api.common import READ, bad_field, errors, moment
from pymon.web.engine import lookup, port_of
from pymon.web.uptime import MAX_WINDOW, parse_window, uptime_json, uptime_of
from pymon.web.views import service_json

__all__ = ["UptimeBody", "router"]

router = APIRouter()

# Moments past this (9999-12-31) or before the epoch are not times a monitor saw.
_LATEST = 253_402_300_799.0
_DEFAULT_WINDOW = 30 * 86400.0


class UptimeBody(BaseModel):
    """One service's uptime over ``since``..``until`` (seconds of each class of time)."""

    service: str
    since: float
    until: float
    uptime_pct: float | None
    downtime_minutes: float
    up: float
    down: float
    unknown: float
    maintenance: float
    no_data: float
    checks: int
    ok_checks: int
    worst: str | None
    response_avg: float | None
    response_p95: float | None
    response_min: float | None
    response_max: float | None


def _bounded(field: str, value: float | None) -> float | None:
    if value is not None and not 0 <= value <= _LATEST:
        raise bad_field("query", field, "must be between 1970 and 9999")
    return value


@router.get(
    "/api/v1/services/{name:path}/uptime",
    dependencies=READ,
    # Documented, not enforced: a service named ".../uptime" answers its detail here.
    responses={200: {"model": UptimeBody}, **errors(401, 403, 404, 422)},
)
async def service_uptime(
    request: Request,
    name: str,
    window: str | None = Query(
        None, max_length=50, description="24h, 7d, 30d, 90d, 1y or any duration (at most 400d)"
    ),
    since: str | None = Query(
        None, max_length=50, description="epoch seconds, ISO 8601, or e.g. 24h (ago)"
    ),
    until: str | None = Query(
        None, max_length=50, description="epoch seconds, ISO 8601, or e.g. 1h (ago); default now"
    ),
    include_maintenance: bool = Query(False, description="count time in maintenance as up or down"),
) -> dict[str, Any]:
    """Uptime % by time, downtime, no data, checks and response times over a window."""
    port = port_of(request)
    if await port.service(name) is None and await port.service(f"{name}/uptime") is not None:
        # A service whose own name ends in "/uptime": the detail route's, not this one.
        return service_json(await lookup(port, f"{name}/uptime"))
    await lookup(port, name)
    now = port.now()
    if window is not None and since is not None:
        raise bad_field("query", "window", "give window or since, not both")
    high = _bounded("until", moment("until", until, now))
    high = now if high is None else high
    low = _bounded("since", moment("since", since, now))
    if low is None:
        try:
            span = _DEFAULT_WINDOW if window is None else parse_window(window)
        except ValueError as exc:
            raise bad_field("query", "window", str(exc)) from None
        low = high - span
    if high <= low:
        raise bad_field("query", "until", "must be after since")
    if high - low > MAX_WINDOW:
        raise bad_field("query", "since", "the window may be at most 400 days")
    found = await uptime_of(port, [name], low, high, include_maintenance=include_maintenance)
    return uptime_json(found[name])
