"""The maintenance page: every window (the config's and those added at run time, the
active ones marked), the form that adds one (a
:class:`~pymon.web.commands.MaintenanceCommand`) and removing one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from pymon.engine.maintenance import active_at
from pymon.web.auth import require_write
from pymon.web.commands import CommandError, MaintenanceCommand
from pymon.web.engine import port_of
from pymon.web.pages.render import (
    NO_STORE,
    absolute,
    login_needed,
    read_form,
    render,
    span,
    wants_json,
)
from pymon.web.proxy import public_prefix

if TYPE_CHECKING:
    from pymon.config.windows import MaintenanceWindow
    from pymon.engine.ports import EnginePort

__all__ = ["router"]

router = APIRouter()


def _schedule(window: MaintenanceWindow) -> str:
    if window.kind == "cron":
        return f"cron {window.cron} for {span(window.duration or 0)} ({window.timezone})"
    if window.kind == "weekly":
        days = ", ".join(window.days or ())
        opens = window.from_.strftime("%H:%M") if window.from_ else "00:00"
        closes = window.to.strftime("%H:%M") if window.to else "24:00"
        return f"{days} {opens}\u2013{closes} ({window.timezone})"
    start = window.start.timestamp() if window.start else None
    end = window.end.timestamp() if window.end else None
    return f"{absolute(start)} \u2013 {absolute(end)}"


def _windows(port: EnginePort) -> list[dict[str, Any]]:
    now = port.now()
    rows = []
    for view in port.windows():
        window = view.window
        span = active_at(window, now)
        rows.append(
            {
                "id": window.id,
                "adhoc": view.source == "api",
                "name": window.name,
                "services": window.services,
                "tags": window.tags,
                "schedule": _schedule(window),
                "comment": window.comment,
                "author": window.author,
                "active": span is not None,
                "until": span[1] if span is not None else None,
            }
        )
    return rows


@router.get("/maintenance")
async def maintenance(request: Request) -> Response:
    """Every maintenance window (config and ad hoc, active ones marked) and a form to add one."""
    if (login := await login_needed(request)) is not None:
        return login
    return render(
        request, "maintenance.html", page="maintenance", windows=_windows(port_of(request))
    )


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def _command_fields(form: dict[str, str]) -> dict[str, Any]:
    """The add-window form's fields as a :class:`MaintenanceCommand`'s: an empty field
    is one not given; services and tags are lists separated by commas or lines."""
    fields: dict[str, Any] = {
        key: value.strip()
        for key in ("start", "end", "duration", "comment", "timezone")
        if (value := form.get(key, "")).strip()
    }
    for key in ("services", "tags"):
        fields[key] = _split(form.get(key, ""))
    return fields


@router.post("/maintenance")
async def add_window(request: Request, user: str = Depends(require_write)) -> Response:
    """Add an ad hoc window from the form (services and/or tags; start/end or duration)."""
    port = port_of(request)
    form = await read_form(request)
    try:
        window = MaintenanceCommand.parse(_command_fields(form)).to_window(user, port.now())
    except CommandError as exc:
        message = str(exc)
        if wants_json(request):
            return JSONResponse({"error": message}, status_code=422, headers=NO_STORE)
        return render(
            request,
            "maintenance.html",
            422,
            page="maintenance",
            windows=_windows(port),
            error=message,
            form=form,
        )
    added = await port.add_maintenance(window)
    if wants_json(request):
        return JSONResponse({"id": added.id}, status_code=201, headers=NO_STORE)
    return RedirectResponse(f"{public_prefix(request)}/maintenance", status_code=303)


@router.post("/maintenance/{window_id}/delete")
async def delete_window(
    request: Request, window_id: str, _: str = Depends(require_write)
) -> Response:
    """Remove an ad hoc window (config windows change with the config only)."""
    if not await port_of(request).remove_maintenance(window_id):
        raise HTTPException(404, f"no ad hoc maintenance window {window_id!r}")
    if wants_json(request):
        return JSONResponse({"deleted": window_id}, headers=NO_STORE)
    return RedirectResponse(f"{public_prefix(request)}/maintenance", status_code=303)
