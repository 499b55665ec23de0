"""The API's services: the list, one service, its history, the events, and the
commands on one service (acknowledge, take back, run now).

The suffix routes (``/history``, ``/ack``, ``/run``) come before the plain
``/api/v1/services/{name}``, whose ``path`` converter would take them too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from pymon.locations import listed
from pymon.web.api.common import READ, Limit, Offset, bad_field, errors, moment, page
from pymon.web.api.formats import (
    NDJSON,
    NDJSON_LINE,
    Format,
    chosen_format,
    json_list,
    ndjson_list,
    selected_fields,
)
from pymon.web.auth import require_write
from pymon.web.commands import MAX_SPAN, Span
from pymon.web.downsample import Sample, downsample
from pymon.web.engine import lookup, port_of
from pymon.web.views import incident_json, service_json

if TYPE_CHECKING:
    from pymon.engine.ports import ServiceView
    from pymon.web.fragments import ServiceFragments

__all__ = ["AckRequestBody", "router"]

router = APIRouter()


def _matches(view: ServiceView, text: str) -> bool:
    needle = text.casefold()
    service = view.config
    return any(
        needle in hay.casefold()
        for hay in (
            service.name,
            view.state.message,
            service.type,
            service.description,
            *service.tags,
        )
    )


@router.get(
    "/api/v1/services",
    dependencies=READ,
    response_model=dict[str, Any],
    responses={
        200: {
            "content": {NDJSON: {"schema": NDJSON_LINE}},
            "headers": {"X-Total-Count": {"description": "NDJSON: services that matched"}},
        },
        **errors(401, 403, 422),
    },
)
async def list_services(
    request: Request,
    limit: Limit = 1000,
    offset: Offset = 0,
    status: Literal["ok", "warn", "error", "failed", "unknown", "disabled"] | None = Query(
        None, description="only services with this status"
    ),
    tag: str | None = Query(None, max_length=200, description="only services with this tag"),
    q: str | None = Query(
        None, max_length=200, description="text in the name, message, type or tags"
    ),
    fields: str | None = Query(
        None, max_length=2000, description="only these keys of each service (name,status,...)"
    ),
    format: Annotated[
        Format | None,
        Query(description="json (the default) or ndjson (one service per line, streamed)"),
    ] = None,
) -> Response:
    """Every service with its current state, in config order, filtered and paginated;
    as JSON, or NDJSON (``format=ndjson`` or ``Accept: application/x-ndjson``). A
    service's location checks (``web@eu-west``) are not listed: their results are in
    the service's ``locations``, and each answers at its own name."""
    chosen = selected_fields(fields)
    views = listed(await port_of(request).services())
    fragments: ServiceFragments = request.app.state.fragments
    fragments.keep_only(view.name for view in views)
    encode = fragments.encoder(chosen)
    picked = [
        view
        for view in views
        if (status is None or view.state.status == status)
        and (tag is None or tag in view.config.tags)
        and (not q or _matches(view, q))
    ]
    shown = picked[offset : offset + limit]
    if chosen_format(format, request.headers.get("accept", "")) == "ndjson":
        return ndjson_list(len(picked), shown, encode)
    return json_list(len(picked), offset, limit, shown, encode)


@router.get(
    "/api/v1/services/{name:path}/history",
    dependencies=READ,
    responses=errors(401, 403, 404, 422),
)
async def service_history(
    request: Request,
    name: str,
    limit: Limit = 100,
    offset: Offset = 0,
    since: str | None = Query(None, description="epoch seconds, ISO 8601, or e.g. 24h (ago)"),
    until: str | None = Query(None, description="epoch seconds, ISO 8601, or e.g. 1h (ago)"),
    points: int | None = Query(
        None, ge=1, le=2000, description="downsample to at most this many points"
    ),
) -> dict[str, Any]:
    """One service's results in a time range: newest first, or downsampled with
    ``points`` (oldest first; per point the worst status and min/avg/max per metric,
    and ``gap`` where no result came for too long before it)."""
    port = port_of(request)
    if await port.service(name) is None and await port.service(f"{name}/history") is not None:
        # A service whose own name ends in "/history": this route caught its detail.
        return await get_service(request, f"{name}/history")
    view = await lookup(port, name)
    now = port.now()
    low, high = moment("since", since, now), moment("until", until, now)
    if low is not None and high is not None and high < low:
        raise bad_field("query", "until", "must not be before since")
    ranged = low is not None or high is not None or points is not None
    fetch = max(port.config.storage.history, offset + limit) if ranged else offset + limit
    records = [
        r
        for r in await port.history(name, fetch)
        if (low is None or r.started_at >= low) and (high is None or r.started_at <= high)
    ]
    answer: dict[str, Any] = {"service": name, "total": len(records), "since": low, "until": high}
    if points is not None:
        samples = [Sample(r.started_at, r.status, dict(r.metrics)) for r in records]
        buckets = downsample(samples, points, low, high, interval=view.config.interval)
        answer["points"] = [b.to_json() for b in buckets]
        return answer
    answer |= {
        "offset": offset,
        "limit": limit,
        "results": [
            {
                "seq": r.seq,
                "status": r.status.value,
                "message": r.message,
                "metrics": dict(r.metrics),
                "started_at": r.started_at,
                "duration": r.duration,
                "lateness": r.lateness,
            }
            for r in records[offset : offset + limit]
        ],
    }
    return answer


@router.get("/api/v1/events", dependencies=READ, responses=errors(401, 403, 422))
async def list_events(
    request: Request,
    limit: Limit = 100,
    offset: Offset = 0,
    service: str | None = Query(None, max_length=200),
) -> dict[str, Any]:
    """The newest transitions, newest first (of one service if given), paginated."""
    rows = await port_of(request).events(offset + limit + 1, service)
    shown, total, next_offset = page(rows, offset, limit)
    return {
        "total": total,
        "offset": offset,
        "limit": limit,
        "next_offset": next_offset,
        "events": [e.to_dict() for e in shown],
    }


class AckRequestBody(BaseModel):
    """An acknowledgement: why, optionally for how long (``2h``, ``30m``), and who
    (taken from the credentials; ``author`` counts only for the loopback writer)."""

    model_config = ConfigDict(extra="forbid")

    author: str | None = Field(default=None, min_length=1, max_length=200)
    comment: str = Field(default="", max_length=2000)
    expires: Span | None = None


def _author(user: str, claimed: str | None) -> str:
    # Someone who proved who they are acts as themselves; the loopback writer is
    # whoever runs the tool on this machine, so its own word is all there is.
    return (claimed or "api") if user == "local" else user


@router.post("/api/v1/services/{name:path}/ack", responses=errors(400, 401, 403, 404, 409, 422))
async def acknowledge(
    request: Request,
    name: str,
    body: AckRequestBody | None = None,
    user: str = Depends(require_write),
) -> dict[str, Any]:
    """Acknowledge the service's open incident: its notices stop until it closes or
    gets worse. 409 when there is no open incident."""
    port = port_of(request)
    body = body or AckRequestBody()
    if body.expires is not None and body.expires > MAX_SPAN:
        raise bad_field("body", "expires", "must be at most 366 days")
    expires = None if body.expires is None else port.now() + body.expires
    incident = await port.acknowledge(name, _author(user, body.author), body.comment, expires)
    return {"service": name, "incident": incident_json(incident)}


@router.delete("/api/v1/services/{name:path}/ack", responses=errors(401, 403, 404, 409, 422))
async def unacknowledge(
    request: Request,
    name: str,
    author: str | None = Query(None, min_length=1, max_length=200),
    user: str = Depends(require_write),
) -> dict[str, Any]:
    """Take the acknowledgement back: notices resume. 409 when it is not acknowledged."""
    # The engine says whether it is acknowledged: the node that runs the service
    # may be another one, and only it knows.
    incident = await port_of(request).unacknowledge(name, _author(user, author))
    return {"service": name, "incident": incident_json(incident)}


@router.post(
    "/api/v1/services/{name:path}/run",
    status_code=202,
    responses=errors(401, 403, 404, 409, 422),
)
async def run_now(
    request: Request, name: str, user: str = Depends(require_write)
) -> dict[str, Any]:
    """Run the service's check at once (202: queued; the state changes when it ends).
    409 for a disabled service."""
    await port_of(request).run_now(name)
    return {"service": name, "queued": True, "by": user}


@router.get("/api/v1/services/{name:path}", dependencies=READ, responses=errors(401, 403, 404, 422))
async def get_service(request: Request, name: str) -> dict[str, Any]:
    """One service's state: status, flags, message, metrics, times and counts."""
    return service_json(await lookup(port_of(request), name))
