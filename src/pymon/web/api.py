"""The JSON API (``/api/v1``) and ``/healthz``, over the engine's port.

Reads need ``require_read`` (open unless ``web.auth.read``), writes ``require_write``;
the heartbeat and ``/healthz`` are never behind auth. Routes that take a service
name use the ``path`` converter, so names with ``/`` work; the routes with a suffix
(``/history``, ``/ack``, ``/run``) come before the plain one. Every list is
paginated (``limit``, ``offset``) and says its ``total`` (null where the store
cannot count cheaply; then ``next_offset`` says whether more follow). A command the
engine refuses answers 409, one naming no service 404 (``web/app.py`` maps them).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from pymon import __version__
from pymon.config.durations import Duration, parse_duration
from pymon.config.windows import MaintenanceWindow
from pymon.engine.maintenance import active_at
from pymon.engine.reconcile import fingerprints
from pymon.web.auth import require_read, require_write
from pymon.web.commands import CommandError, MaintenanceCommand
from pymon.web.downsample import Sample, downsample

if TYPE_CHECKING:
    from pymon.engine.ports import EnginePort, OutboxFigures, ServiceView
    from pymon.model import Incident
    from pymon.store.base import Delivery

__all__ = ["incident_json", "router", "service_json", "window_json"]

router = APIRouter()

_READ = [Depends(require_read)]
_INCIDENT_UNSHOWN = frozenset({"service", "pending"})


def _port(request: Request) -> EnginePort:
    port: EnginePort = request.app.state.port
    return port


def incident_json(incident: Incident | None) -> dict[str, Any] | None:
    """An incident as the API shows it (None stays None): :meth:`Incident.to_dict`
    without what the service's own row already says (``service``) or what only the
    engine weighs (``pending``)."""
    if incident is None:
        return None
    return {k: v for k, v in incident.to_dict().items() if k not in _INCIDENT_UNSHOWN}


def service_json(view: ServiceView) -> dict[str, Any]:
    """A service as the API, the pages and the live stream show it."""
    service, state, incident = view.config, view.state, view.incident
    return {
        **state.to_dict(),
        "acknowledged": incident is not None and incident.ack is not None,
        "escalated": incident is not None and incident.escalated,
        "incident": incident_json(incident),
        "type": service.type,
        "description": service.description,
        "enabled": service.enabled,
        "interval": service.interval,
        "tags": service.tags,
    }


async def _lookup(port: EnginePort, name: str) -> ServiceView:
    view = await port.service(name)
    if view is None:
        raise HTTPException(404, f"no service named {name!r}")
    return view


def _bad_field(where: Literal["query", "body", "path"], field: str, message: str) -> Exception:
    """A 422 naming ``field``, in the same shape as FastAPI's own validation errors."""
    return RequestValidationError([{"loc": (where, field), "msg": message, "type": "value_error"}])


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


@router.get("/api/v1/services", dependencies=_READ)
async def list_services(
    request: Request,
    limit: int = Query(1000, ge=1, le=10_000),
    offset: int = Query(0, ge=0),
    status: Literal["ok", "warn", "error", "failed", "unknown", "disabled"] | None = Query(
        None, description="only services with this status"
    ),
    tag: str | None = Query(None, max_length=200, description="only services with this tag"),
    q: str | None = Query(
        None, max_length=200, description="text in the name, message, type or tags"
    ),
) -> dict[str, Any]:
    """Every service with its current state, in config order, filtered and paginated."""
    picked = [
        view
        for view in await _port(request).services()
        if (status is None or view.state.status == status)
        and (tag is None or tag in view.config.tags)
        and (not q or _matches(view, q))
    ]
    return {
        "total": len(picked),
        "offset": offset,
        "limit": limit,
        "services": [service_json(view) for view in picked[offset : offset + limit]],
    }


def _moment(field: str, value: str | None, now: float) -> float | None:
    """``since``/``until``: epoch seconds, an ISO 8601 date-time (naive is UTC), or a
    duration meaning that long ago (``24h``)."""
    if value is None:
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(number):
            return number
        raise _bad_field("query", field, f"{value[:50]!r} is not a finite number")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            return now - parse_duration(text)
        except (ValueError, OverflowError):
            raise _bad_field(
                "query",
                field,
                f"{value[:50]!r} is not epoch seconds, an ISO 8601 date-time "
                "(2026-05-01T02:00Z) or a duration ago (24h)",
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@router.get("/api/v1/services/{name:path}/history", dependencies=_READ)
async def service_history(
    request: Request,
    name: str,
    limit: int = Query(100, ge=1, le=10_000),
    offset: int = Query(0, ge=0),
    since: str | None = Query(None, description="epoch seconds, ISO 8601, or e.g. 24h (ago)"),
    until: str | None = Query(None, description="epoch seconds, ISO 8601, or e.g. 1h (ago)"),
    points: int | None = Query(
        None, ge=1, le=2000, description="downsample to at most this many points"
    ),
) -> dict[str, Any]:
    """One service's results in a time range: newest first, or downsampled with
    ``points`` (oldest first; per point the worst status and min/avg/max per metric)."""
    port = _port(request)
    if await port.service(name) is None and await port.service(f"{name}/history") is not None:
        # A service whose own name ends in "/history": this route caught its detail.
        return await get_service(request, f"{name}/history")
    await _lookup(port, name)
    now = port.now()
    low, high = _moment("since", since, now), _moment("until", until, now)
    if low is not None and high is not None and high < low:
        raise _bad_field("query", "until", "must not be before since")
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
        answer["points"] = [b.to_json() for b in downsample(samples, points, low, high)]
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


def _page(rows: Sequence[Any], offset: int, limit: int) -> tuple[list[Any], int | None, int | None]:
    """Rows fetched as ``offset + limit + 1`` from the newest: (this page, total if
    known, next offset if more follow)."""
    page = list(rows[offset : offset + limit])
    more = len(rows) > offset + limit
    return page, None if more else offset + len(page), offset + limit if more else None


@router.get("/api/v1/events", dependencies=_READ)
async def list_events(
    request: Request,
    limit: int = Query(100, ge=1, le=10_000),
    offset: int = Query(0, ge=0, le=1_000_000),
    service: str | None = Query(None, max_length=200),
) -> dict[str, Any]:
    """The newest transitions, newest first (of one service if given), paginated."""
    rows = await _port(request).events(offset + limit + 1, service)
    page, total, next_offset = _page(rows, offset, limit)
    return {
        "total": total,
        "offset": offset,
        "limit": limit,
        "next_offset": next_offset,
        "events": [e.to_dict() for e in page],
    }


class AckRequestBody(BaseModel):
    """An acknowledgement: why, optionally for how long (``2h``, ``30m``), and who
    (taken from the credentials; ``author`` counts only for the loopback writer)."""

    model_config = ConfigDict(extra="forbid")

    author: str | None = Field(default=None, min_length=1, max_length=200)
    comment: str = Field(default="", max_length=2000)
    expires: Duration | None = Field(default=None, gt=0)


def _author(user: str, claimed: str | None) -> str:
    # Someone who proved who they are acts as themselves; the loopback writer is
    # whoever runs the tool on this machine, so its own word is all there is.
    return (claimed or "api") if user == "local" else user


@router.post("/api/v1/services/{name:path}/ack")
async def acknowledge(
    request: Request,
    name: str,
    body: AckRequestBody | None = None,
    user: str = Depends(require_write),
) -> dict[str, Any]:
    """Acknowledge the service's open incident: its notices stop until it closes or
    gets worse. 409 when there is no open incident."""
    port = _port(request)
    body = body or AckRequestBody()
    expires = None if body.expires is None else port.now() + body.expires
    incident = await port.acknowledge(name, _author(user, body.author), body.comment, expires)
    return {"service": name, "incident": incident_json(incident)}


@router.delete("/api/v1/services/{name:path}/ack")
async def unacknowledge(
    request: Request,
    name: str,
    author: str | None = Query(None, min_length=1, max_length=200),
    user: str = Depends(require_write),
) -> dict[str, Any]:
    """Take the acknowledgement back: notices resume. 409 when it is not acknowledged."""
    port = _port(request)
    view = await _lookup(port, name)
    if view.incident is None or view.incident.ack is None:
        raise HTTPException(409, f"{name} is not acknowledged")
    incident = await port.unacknowledge(name, _author(user, author))
    return {"service": name, "incident": incident_json(incident)}


@router.post("/api/v1/services/{name:path}/run", status_code=202)
async def run_now(
    request: Request, name: str, user: str = Depends(require_write)
) -> dict[str, Any]:
    """Run the service's check at once (202: queued; the state changes when it ends).
    409 for a disabled service."""
    await _port(request).run_now(name)
    return {"service": name, "queued": True, "by": user}


@router.get("/api/v1/services/{name:path}", dependencies=_READ)
async def get_service(request: Request, name: str) -> dict[str, Any]:
    """One service's state: status, flags, message, metrics, times and counts."""
    return service_json(await _lookup(_port(request), name))


def window_json(window: MaintenanceWindow, source: str, now: float) -> dict[str, Any]:
    """A maintenance window as the API shows it, with ``active`` (covering now) and
    ``source`` (``config``, or ``api`` for one added at run time and deletable)."""
    span = active_at(window, now)
    return {
        **window.model_dump(mode="json", by_alias=True, exclude_none=True),
        "kind": window.kind,
        "source": source,
        "active": span is not None,
        "active_until": None if span is None else span[1],
    }


@router.get("/api/v1/maintenance", dependencies=_READ)
async def list_maintenance(
    request: Request,
    limit: int = Query(1000, ge=1, le=10_000),
    offset: int = Query(0, ge=0),
    active: bool | None = Query(None, description="only windows in force now (or not)"),
) -> dict[str, Any]:
    """Every maintenance window: the config's, then those added through the API."""
    port = _port(request)
    now = port.now()
    rows = [window_json(view.window, view.source, now) for view in port.windows()]
    if active is not None:
        rows = [r for r in rows if r["active"] is active]
    return {
        "total": len(rows),
        "offset": offset,
        "limit": limit,
        "windows": rows[offset : offset + limit],
    }


class MaintenanceRequestBody(MaintenanceCommand):
    """An ad hoc (one-off) window: which services (name globs) and/or tags, from
    ``start`` (default now) to ``end`` or for ``duration``, and why."""


@router.post("/api/v1/maintenance", status_code=201)
async def add_maintenance(
    request: Request, body: MaintenanceRequestBody, user: str = Depends(require_write)
) -> dict[str, Any]:
    """Add an ad hoc window (kept in the store; it survives restarts). 201 with it."""
    port = _port(request)
    try:
        window = body.to_window(user, port.now())
    except CommandError as exc:
        raise _bad_field("body", exc.field, exc.message) from None
    window = await port.add_maintenance(window)
    return window_json(window, "api", port.now())


@router.delete("/api/v1/maintenance/{window_id}")
async def delete_maintenance(
    request: Request, window_id: str, user: str = Depends(require_write)
) -> dict[str, Any]:
    """Remove an ad hoc window (config windows change only with the config). 404 if none."""
    if not await _port(request).remove_maintenance(window_id):
        raise HTTPException(404, f"no ad hoc maintenance window with id {window_id!r}")
    return {"deleted": window_id, "by": user}


def _delivery_json(delivery: Delivery) -> dict[str, Any]:
    notice = delivery.notice
    return {
        "key": notice.key,
        "channel": delivery.channel,
        "state": delivery.state,
        "service": notice.service,
        "kind": notice.kind.value,
        "status": notice.status.value,
        "message": notice.message,
        "at": notice.at,
        "incident": notice.incident,
        "attempts": delivery.attempts,
        "next_at": delivery.next_at if delivery.state == "pending" else None,
        "delivered_at": delivery.delivered_at,
        "failed_at": delivery.failed_at,
        "error": delivery.error,
    }


@router.get("/api/v1/notifications", dependencies=_READ)
async def list_notifications(
    request: Request,
    state: Literal["pending", "delivered", "failed"] | None = Query(
        None, description="only deliveries in this state (failed: given up)"
    ),
    service: str | None = None,
    limit: int = Query(100, ge=1, le=10_000),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    """Every notice's delivery to each of its channels, newest first, with the last
    error of those that failed, and the outbox's counters since start."""
    port = _port(request)
    rows = await port.deliveries(state=state, service=service, limit=limit + 1, offset=offset)
    page, total, next_offset = _page(rows, 0, limit)
    return {
        "stats": _outbox_json(port.health().notifications),
        "total": None if total is None else offset + total,
        "offset": offset,
        "limit": limit,
        "next_offset": None if next_offset is None else offset + next_offset,
        "deliveries": [_delivery_json(d) for d in page],
    }


def _outbox_json(outbox: OutboxFigures) -> dict[str, Any]:
    return {
        "sent": outbox.sent,
        "failed_attempts": outbox.failed_attempts,
        "gave_up": outbox.gave_up,
        "in_flight": outbox.in_flight,
    }


@router.post("/api/v1/heartbeat/{token}", operation_id="heartbeat_post")
@router.get("/api/v1/heartbeat/{token}", operation_id="heartbeat_get")
async def heartbeat(
    request: Request,
    token: str,
    status: Literal["ok", "fail"] = Query("ok", description="fail: the job reports a failure"),
    msg: str = Query("", max_length=1000, description="a short note shown with the state"),
) -> dict[str, Any]:
    """A job's push to its ``heartbeat`` service (GET works too, for the simplest cron line)."""
    name = await _port(request).push_heartbeat(token, ok=status == "ok", message=msg)
    if name is None:
        raise HTTPException(404, "unknown heartbeat token")
    return {"service": name, "status": status}


@router.post("/api/v1/reload")
async def reload_config(request: Request, user: str = Depends(require_write)) -> JSONResponse:
    """Read the config file again and apply it: 200 with what changed, or 422 with every
    error when it is invalid (the running config is kept)."""
    result = await _port(request).reload(f"api ({user})")
    return JSONResponse(result.to_dict(), status_code=200 if result.ok else 422)


@router.get("/api/v1/config", dependencies=_READ)
async def config_summary(request: Request) -> dict[str, Any]:
    """The running config: its source, checksum and a fingerprint per service.

    A fingerprint is a hash of the service's settings without its secrets, so a
    client can tell what a reload of another file would change (``pymon config
    validate FILE --against URL``) without the API showing any setting.
    """
    config = _port(request).config
    return {
        "source": config.source,
        "checksum": config.checksum,
        "services": fingerprints(config),
    }


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, Any]:
    """Liveness and the basics: version, uptime, config, scheduler and store queues."""
    port = _port(request)
    health, config = port.health(), port.config
    stats = health.scheduler
    return {
        "status": "ok",
        "version": __version__,
        "instance": config.instance.name,
        "uptime": round(time.time() - health.started_at, 3),
        "services": health.services,
        "config": {"source": config.source, "checksum": config.checksum},
        "reload": {
            "ok": health.reload.ok,
            "at": health.reload.at,
            "error": health.reload.error,
            "source": health.reload.source,
        },
        "scheduler": {
            "runs": stats.runs,
            "skipped": stats.skipped,
            "in_flight": stats.in_flight,
            "lateness_p50": stats.lateness_p50,
            "lateness_p99": stats.lateness_p99,
        },
        "notifications": _outbox_json(health.notifications),
        "store": {
            "pending": health.store.pending,
            "flushes": health.store.flushes,
            "failures": health.store.failures,
        },
    }
