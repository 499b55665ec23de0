"""A service page's actions: acknowledge, take back, run now, maintenance for a while.

Each answers JSON with the service's new state to a ``fetch`` that asks for it, and
redirects a plain form post back to the service's page (with the error, if any).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from pymon.durations import parse_duration
from pymon.engine.maintenance import literal_pattern
from pymon.errors import CommandRefused
from pymon.web.auth import require_write
from pymon.web.commands import CommandError, MaintenanceCommand
from pymon.web.engine import lookup, port_of
from pymon.web.pages.render import NO_STORE, quote_name, read_form, span, wants_json
from pymon.web.proxy import public_prefix
from pymon.web.views import service_json

if TYPE_CHECKING:
    from pymon.engine.ports import ServiceView

__all__ = ["router"]

router = APIRouter()


async def _answer(
    request: Request, name: str, message: str, status_code: int = 200, **extra: Any
) -> Response:
    """JSON with the service's new state for ``fetch``; a redirect to its page for a form."""
    if wants_json(request):
        view = await lookup(port_of(request), name)
        body = {"message": message, "service": service_json(view), **extra}
        return JSONResponse(body, status_code=status_code, headers=NO_STORE)
    url = f"{public_prefix(request)}/services/{quote_name(name)}"
    if status_code >= 400:
        url += "?" + urlencode({"error": message})
    return RedirectResponse(url, status_code=303)


async def _refusal(request: Request, name: str, message: str, status_code: int = 409) -> Response:
    if wants_json(request):
        return JSONResponse({"error": message}, status_code=status_code, headers=NO_STORE)
    return await _answer(request, name, message, status_code)


async def _known(request: Request, name: str) -> ServiceView:
    """The service ``name`` (404 when there is none)."""
    return await lookup(port_of(request), name)


async def _apply(request: Request, name: str, change: Awaitable[object], done: str) -> Response:
    """Await ``change``: its CommandRefused is the refusal, else ``done`` is the answer."""
    try:
        await change
    except CommandRefused as exc:
        return await _refusal(request, name, str(exc))
    return await _answer(request, name, done)


@router.post("/services/{name:path}/ack")
async def ack_action(request: Request, name: str, user: str = Depends(require_write)) -> Response:
    """Acknowledge the service's open incident (form fields ``comment``, ``expires``)."""
    await _known(request, name)
    port = port_of(request)
    form = await read_form(request)
    comment = form.get("comment", "").strip()[:2000]
    expires: float | None = None
    if form.get("expires", "").strip():
        try:
            expires = port.now() + parse_duration(form["expires"])
        except ValueError as exc:
            return await _refusal(request, name, f"expires: {exc}", 422)
    change = port.acknowledge(name, user, comment, expires)
    return await _apply(request, name, change, f"acknowledged by {user}")


@router.post("/services/{name:path}/unack")
async def unack_action(request: Request, name: str, user: str = Depends(require_write)) -> Response:
    """Take the acknowledgement back."""
    view = await _known(request, name)
    if view.incident is None or view.incident.ack is None:
        return await _refusal(request, name, f"{name} is not acknowledged")
    change = port_of(request).unacknowledge(name, user)
    return await _apply(request, name, change, f"acknowledgement taken back by {user}")


@router.post("/services/{name:path}/run")
async def run_action(request: Request, name: str, _: str = Depends(require_write)) -> Response:
    """Run the service's check now; the new state follows over the live stream."""
    await _known(request, name)
    try:
        await port_of(request).run_now(name)
    except CommandRefused as exc:
        return await _refusal(request, name, str(exc))
    return await _answer(request, name, "check started", 202)


@router.post("/services/{name:path}/maintenance")
async def maintenance_action(
    request: Request, name: str, user: str = Depends(require_write)
) -> Response:
    """Put the service in maintenance from now for ``duration`` (e.g. ``2h``)."""
    await _known(request, name)
    port = port_of(request)
    form = await read_form(request)
    fields = {
        "services": [literal_pattern(name)],
        "duration": form.get("duration", ""),
        "comment": form.get("comment", "").strip(),
    }
    try:
        window = MaintenanceCommand.parse(fields).to_window(user, port.now())
    except CommandError as exc:
        return await _refusal(request, name, str(exc), 422)
    added = await port.add_maintenance(window)
    assert window.start is not None and window.end is not None
    length = span(window.end.timestamp() - window.start.timestamp())
    return await _answer(request, name, f"in maintenance for {length}", window=added.id)
