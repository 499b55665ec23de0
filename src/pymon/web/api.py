"""The JSON API (``/api/v1``) and ``/healthz``. Reads the daemon's in-memory state."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request

from pymon import __version__

if TYPE_CHECKING:
    from pymon.config.schema import ServiceConfig
    from pymon.engine.daemon import Daemon
    from pymon.model import Incident, ServiceState

__all__ = ["router"]

router = APIRouter()


def _daemon(request: Request) -> Daemon:
    daemon: Daemon = request.app.state.daemon
    return daemon


def _incident_json(incident: Incident | None) -> dict[str, Any] | None:
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


def _service_json(
    service: ServiceConfig, state: ServiceState, incident: Incident | None
) -> dict[str, Any]:
    return {
        **state.to_dict(),
        "acknowledged": incident is not None and incident.ack is not None,
        "escalated": incident is not None and incident.escalated,
        "incident": _incident_json(incident),
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
        _service_json(svc, daemon.states[name], daemon.incidents.get(name))
        for name, svc in daemon.services.items()
        if name in daemon.states and (status is None or daemon.states[name].status == status)
    ]
    return {"total": len(rows), "offset": offset, "services": rows[offset : offset + limit]}


@router.get("/api/v1/services/{name}")
async def get_service(request: Request, name: str) -> dict[str, Any]:
    """One service's state: status, flags, message, metrics, times and counts."""
    daemon = _daemon(request)
    service, state = _lookup(daemon, name)
    return _service_json(service, state, daemon.incidents.get(name))


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
        "store": {
            "pending": daemon.writer.pending,
            "flushes": daemon.writer.flushes,
            "failures": daemon.writer.failures,
        },
    }
