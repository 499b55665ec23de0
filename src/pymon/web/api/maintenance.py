"""The API's maintenance windows: the list (the config's, then those added at run
time), adding one (a :class:`~pymon.web.commands.MaintenanceCommand`) and removing one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from pymon.web.api.common import READ, Limit, Offset, bad_field, errors
from pymon.web.auth import require_write
from pymon.web.commands import CommandError, MaintenanceCommand
from pymon.web.engine import port_of
from pymon.web.views import window_json

__all__ = ["MaintenanceRequestBody", "router"]

router = APIRouter()


@router.get("/api/v1/maintenance", dependencies=READ, responses=errors(401, 403, 422))
async def list_maintenance(
    request: Request,
    limit: Limit = 1000,
    offset: Offset = 0,
    active: bool | None = Query(None, description="only windows in force now (or not)"),
) -> dict[str, Any]:
    """Every maintenance window: the config's, then those added through the API."""
    port = port_of(request)
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

    # The command itself, under the name the OpenAPI document has always given it.


@router.post("/api/v1/maintenance", status_code=201, responses=errors(400, 401, 403, 422))
async def add_maintenance(
    request: Request, body: MaintenanceRequestBody, user: str = Depends(require_write)
) -> dict[str, Any]:
    """Add an ad hoc window (kept in the store; it survives restarts). 201 with it."""
    port = port_of(request)
    try:
        window = body.to_window(user, port.now())
    except CommandError as exc:
        raise bad_field("body", exc.field, exc.message) from None
    window = await port.add_maintenance(window)
    return window_json(window, "api", port.now())


@router.delete("/api/v1/maintenance/{window_id}", responses=errors(401, 403, 404, 409, 422))
async def delete_maintenance(
    request: Request, window_id: str, user: str = Depends(require_write)
) -> dict[str, Any]:
    """Remove an ad hoc window (config windows change only with the config). 404 if none."""
    if not await port_of(request).remove_maintenance(window_id):
        raise HTTPException(404, f"no ad hoc maintenance window with id {window_id!r}")
    return {"deleted": window_id, "by": user}
