"""What every page shares: the Jinja2 environment and its filters, rendering with the
security headers, the way to the login page, reading a form post, and the tables'
columns and flags."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader

from pymon import __version__
from pymon.model import Status
from pymon.text import span
from pymon.web.auth import csrf_token, current_user, require_read
from pymon.web.engine import port_of
from pymon.web.proxy import public_prefix

if TYPE_CHECKING:
    from pymon.engine.ports import EnginePort

__all__ = [
    "COLUMNS",
    "FLAGS",
    "NO_STORE",
    "PAGE_SIZE",
    "SEVERITY",
    "STATUSES",
    "absolute",
    "event_rows",
    "login_needed",
    "quote_name",
    "read_form",
    "render",
    "span",
    "wants_json",
]

PAGE_SIZE = 100
"""Rows per page in the services and events tables (server and browser alike)."""

COLUMNS = ("name", "status", "type", "message", "last_check", "last_change", "tags")
"""The services table's columns, each sortable."""

FLAGS = (
    "confirmed",
    "recovering",
    "acknowledged",
    "maintenance",
    "flapping",
    "escalated",
    "unreachable",
)
"""The flags that ride on a status, in the order the service page shows them."""

STATUSES = tuple(s.value for s in Status)
SEVERITY = {s.value: s.severity for s in Status}
_MAX_FORM = 64 * 1024
NO_STORE = {"Cache-Control": "no-store"}
# Pages carry no inline script or style, so the policy can forbid both: an injected
# tag that escaped escaping would still not run.
_SECURITY_HEADERS = {
    **NO_STORE,
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def quote_name(name: str) -> str:
    return quote(name, safe="")


def _iso(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def absolute(ts: float | None) -> str:
    if ts is None:
        return "never"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(ts: float | None) -> str:
    if ts is None:
        return "never"
    delta = time.time() - ts
    if -1 < delta < 1:
        return "just now"
    return f"in {span(-delta)}" if delta < 0 else f"{span(delta)} ago"


def _number(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.0f}"
    return str(value)


_env = Environment(
    loader=PackageLoader("pymon.web", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(q=quote_name, iso=_iso, absolute=absolute, ago=_ago, span=span, num=_number)
_env.globals.update(
    STATUSES=STATUSES, FLAGS=FLAGS, COLUMNS=COLUMNS, version=__version__, PAGE_SIZE=PAGE_SIZE
)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    """``template`` rendered with ``context`` and what every page needs (prefix, CSRF
    token, user, instance), sent with the security headers."""
    html = _env.get_template(template).render(
        prefix=public_prefix(request),
        csrf=csrf_token(request),
        user=current_user(request),
        instance=port_of(request).config.instance.name,
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers=_SECURITY_HEADERS)


async def login_needed(request: Request) -> Response | None:
    """None when the visitor may read; else (reading needs credentials and there are
    none) a redirect to the login page that comes back here."""
    try:
        await require_read(request)
    except HTTPException as exc:
        if exc.status_code != 401:
            raise
        prefix = public_prefix(request)
        base = port_of(request).config.web.base_path.rstrip("/")
        here = prefix + request.url.path[len(base) :]
        if request.url.query:
            here += f"?{request.url.query}"
        return RedirectResponse(f"{prefix}/login?{urlencode({'next': here})}", status_code=303)
    return None


def wants_json(request: Request) -> bool:
    """Whether the request is a page's ``fetch`` that wants JSON back (not a form post)."""
    return "application/json" in request.headers.get("accept", "")


async def read_form(request: Request) -> dict[str, str]:
    """The fields of a urlencoded form post (the last value of a repeated field wins)."""
    if int(request.headers.get("content-length") or 0) > _MAX_FORM:
        raise HTTPException(413, "form too large")
    body = await request.body()
    if len(body) > _MAX_FORM:
        raise HTTPException(413, "form too large")
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


async def event_rows(
    port: EnginePort, *, limit: int, offset: int = 0, service: str | None = None
) -> list[dict[str, Any]]:
    """The newest events (of one service if given) as the pages list them."""
    return [e.to_dict() for e in (await port.events(offset + limit, service))[offset:]]
