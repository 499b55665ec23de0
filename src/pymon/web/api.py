"""The JSON API (``/api/v1``) and ``/healthz``. Reads the daemon's in-memory state."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from pymon import __version__
from pymon.config.durations import Duration
from pymon.errors import PymonError

if TYPE_CHECKING:
    from pymon.config.schema import ServiceConfig
    from pymon.engine.daemon import Daemon
    from pymon.model import Incident, ServiceState
    from pymon.store.base import Delivery

__all__ = ["incident_json", "router", "service_json"]

router = APIRouter()


def _daemon(request: Request) -> Daemon:
    daemon: Daemon = request.app.state.daemon
    return daemon


def incident_json(incident: Incident | None) -> dict[str, Any] | None:
    """An incident as the API shows it (None stays None)."""
    if incident is None:
        return None
    ack = incident.ack
    return {
        "id": incident.id,
        "opened_at": incident.opened_at,
        "closed_at": incident.closed_at,
        "status": incident.status.value,
        "worst": incident.worst.value,
        "notices": incident.notices,
        "last_notice_at": incident.last_notice_at,
        "escalated": incident.escalated,
        "ack": None
        if ack is None
        else {"author": ack.author, "comment": ack.comment, "at": ack.at, "expires": ack.expires},
    }


def service_json(
    service: ServiceConfig, state: ServiceState, incident: Incident | None
) -> dict[str, Any]:
    """A service as the API, the pages and the live stream show it."""
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


def _lookup(daemon: Daemon, name: str) -> tuple[ServiceConfig, ServiceState]:
    service = daemon.services.get(name)
    state = daemon.states.get(name)
    if service is None or state is None:
        raise HTTPException(404, f"no service named {name!r}")
    return service, state


@router.get("/api/v1/services")
async def list_services(
    request: Request,
    limit: int = Query(1000, ge=1, le=10_000),
    offset: int = Query(0, ge=0),
    status: str | None = Query(None, description="only services with this status"),
) -> dict[str, Any]:
    """Every service with its current state, in config order, paginated."""
    daemon = _daemon(request)
    rows = [
        service_json(svc, daemon.states[name], daemon.incidents.get(name))
        for name, svc in daemon.services.items()
        if name in daemon.states and (status is None or daemon.states[name].status == status)
    ]
    return {"total": len(rows), "offset": offset, "services": rows[offset : offset + limit]}


@router.get("/api/v1/services/{name}")
async def get_service(request: Request, name: str) -> dict[str, Any]:
    """One service's state: status, flags, message, metrics, times and counts."""
    daemon = _daemon(request)
    service, state = _lookup(daemon, name)
    return service_json(service, state, daemon.incidents.get(name))


@router.get("/api/v1/services/{name}/history")
async def service_history(
    request: Request, name: str, limit: int = Query(100, ge=1, le=10_000)
) -> dict[str, Any]:
    """The newest results of one service, newest first."""
    daemon = _daemon(request)
    _lookup(daemon, name)
    await daemon.writer.flush()
    records = await daemon.store.history(name, limit)
    return {
        "service": name,
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
            for r in records
        ],
    }


@router.get("/api/v1/events")
async def list_events(
    request: Request,
    limit: int = Query(100, ge=1, le=10_000),
    service: str | None = None,
) -> dict[str, Any]:
    """The newest transitions, newest first (of one service if given)."""
    daemon = _daemon(request)
    await daemon.writer.flush()
    events = await daemon.store.events(limit, service)
    return {
        "events": [
            {
                "service": e.service,
                "kind": e.kind.value,
                "at": e.at,
                "status": e.status.value,
                "previous": e.previous.value,
                "message": e.message,
            }
            for e in events
        ]
    }


class AckRequestBody(BaseModel):
    """An acknowledgement: who, why, and optionally for how long (``2h``, ``30m``)."""

    model_config = ConfigDict(extra="forbid")

    author: str = Field(default="api", min_length=1, max_length=200)
    comment: str = Field(default="", max_length=2000)
    expires: Duration | None = Field(default=None, gt=0)


@router.post("/api/v1/services/{name}/ack")
async def acknowledge(
    request: Request, name: str, body: AckRequestBody | None = None
) -> dict[str, Any]:
    """Acknowledge the service's open incident: its notices stop until it closes or
    gets worse. 409 when there is no open incident."""
    daemon = _daemon(request)
    _lookup(daemon, name)
    body = body or AckRequestBody()
    expires = None if body.expires is None else daemon.clock.time() + body.expires
    try:
        incident = await daemon.acknowledge(name, body.author, body.comment, expires)
    except PymonError as exc:
        raise HTTPException(409, str(exc)) from None
    return {"service": name, "incident": incident_json(incident)}


@router.delete("/api/v1/services/{name}/ack")
async def unacknowledge(
    request: Request,
    name: str,
    author: str = Query("api", min_length=1, max_length=200),
) -> dict[str, Any]:
    """Take the acknowledgement back: notices resume. 409 when it is not acknowledged."""
    daemon = _daemon(request)
    _lookup(daemon, name)
    current = daemon.incidents.get(name)
    if current is None or current.ack is None:
        raise HTTPException(409, f"{name} is not acknowledged")
    try:
        incident = await daemon.unacknowledge(name, author)
    except PymonError as exc:
        raise HTTPException(409, str(exc)) from None
    return {"service": name, "incident": incident_json(incident)}


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


@router.get("/api/v1/notifications")
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
    daemon = _daemon(request)
    await daemon.writer.flush()
    rows = await daemon.store.deliveries(state=state, service=service, limit=limit, offset=offset)
    return {
        "stats": _outbox_json(daemon),
        "offset": offset,
        "deliveries": [_delivery_json(d) for d in rows],
    }


def _outbox_json(daemon: Daemon) -> dict[str, Any]:
    outbox = daemon.notifier.outbox
    return {
        "sent": outbox.stats.sent,
        "failed_attempts": outbox.stats.failed,
        "gave_up": outbox.stats.gave_up,
        "in_flight": outbox.in_flight,
    }


@router.api_route("/api/v1/heartbeat/{token}", methods=["GET", "POST"])
async def heartbeat(
    request: Request,
    token: str,
    status: Literal["ok", "fail"] = Query("ok", description="fail: the job reports a failure"),
    msg: str = Query("", max_length=1000, description="a short note shown with the state"),
) -> dict[str, Any]:
    """A job's push to its ``heartbeat`` service (GET works too, for the simplest cron line)."""
    name = await _daemon(request).push_heartbeat(token, ok=status == "ok", message=msg)
    if name is None:
        raise HTTPException(404, "unknown heartbeat token")
    return {"service": name, "status": status}


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, Any]:
    """Liveness and the basics: version, uptime, config, scheduler and store queues."""
    daemon = _daemon(request)
    stats = daemon.scheduler.stats
    return {
        "status": "ok",
        "version": __version__,
        "instance": daemon.config.instance.name,
        "uptime": round(time.time() - daemon.started_at, 3),
        "services": len(daemon.services),
        "config": {"source": daemon.config.source, "checksum": daemon.config.checksum},
        "scheduler": {
            "runs": stats.runs,
            "skipped": stats.skipped,
            "in_flight": daemon.scheduler.in_flight,
            "lateness_p50": stats.percentile(50),
            "lateness_p99": stats.percentile(99),
        },
        "notifications": _outbox_json(daemon),
        "store": {
            "pending": daemon.writer.pending,
            "flushes": daemon.writer.flushes,
            "failures": daemon.writer.failures,
        },
    }
