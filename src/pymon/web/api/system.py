"""The API's system routes: a job's heartbeat push, reload, the running config (as
fingerprints, never its settings) and ``/healthz``."""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from pymon import __version__
from pymon.engine.reconcile import fingerprints
from pymon.web.api.common import READ, errors
from pymon.web.auth import require_write
from pymon.web.engine import port_of
from pymon.web.views import outbox_json

__all__ = ["healthz", "router"]

router = APIRouter()


@router.post("/api/v1/heartbeat/{token}", operation_id="heartbeat_post", responses=errors(404, 422))
@router.get("/api/v1/heartbeat/{token}", operation_id="heartbeat_get", responses=errors(404, 422))
async def heartbeat(
    request: Request,
    token: str,
    status: Literal["ok", "fail"] = Query("ok", description="fail: the job reports a failure"),
    msg: str = Query("", max_length=1000, description="a short note shown with the state"),
) -> dict[str, Any]:
    """A job's push to its ``heartbeat`` service (GET works too, for the simplest cron line)."""
    name = await port_of(request).push_heartbeat(token, ok=status == "ok", message=msg)
    if name is None:
        raise HTTPException(404, "unknown heartbeat token")
    return {"service": name, "status": status}


@router.post(
    "/api/v1/reload",
    responses={
        **errors(401, 403),
        422: {"description": "the file is invalid: every error (the running config is kept)"},
    },
)
async def reload_config(request: Request, user: str = Depends(require_write)) -> JSONResponse:
    """Read the config file again and apply it: 200 with what changed, or 422 with every
    error when it is invalid (the running config is kept)."""
    result = await port_of(request).reload(f"api ({user})")
    return JSONResponse(result.to_dict(), status_code=200 if result.ok else 422)


@router.get("/api/v1/config", dependencies=READ, responses=errors(401, 403))
async def config_summary(request: Request) -> dict[str, Any]:
    """The running config: its source, checksum and a fingerprint per service.

    A fingerprint is a hash of the service's settings without its secrets, so a
    client can tell what a reload of another file would change (``pymon config
    validate FILE --against URL``) without the API showing any setting.
    """
    config = port_of(request).config
    return {
        "source": config.source,
        "checksum": config.checksum,
        "services": fingerprints(config),
    }


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, Any]:
    """Liveness and the basics: version, uptime, config, scheduler and store queues."""
    port = port_of(request)
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
        "notifications": outbox_json(health.notifications),
        "cluster": {
            "node": health.cluster.node,
            "shards": health.cluster.shards,
            "problem": health.cluster.problem,
            "error": health.cluster.error,
        },
        "store": {
            "pending": health.store.pending,
            "flushes": health.store.flushes,
            "failures": health.store.failures,
        },
    }
