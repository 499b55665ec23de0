"""The dashboard: server-rendered pages (Jinja2) that the ES modules in ``static/`` enhance.

Every page reads without JavaScript; the modules add live updates, client-side
sorting and in-place actions. Links, form actions and asset URLs carry
:func:`~pymon.web.proxy.public_prefix`, so the pages work under ``web.base_path``
and behind a proxy's prefix. Writes go through
:func:`~pymon.web.auth.require_write` (credentials and CSRF); each answers JSON to a
``fetch`` that asks for it and redirects a plain form post back to its page.
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from pymon import __version__
from pymon.config.durations import parse_duration
from pymon.config.windows import MaintenanceWindow
from pymon.engine.maintenance import active_at, literal_pattern
from pymon.errors import CommandRefused
from pymon.model import Status
from pymon.web import api
from pymon.web.api import service_json
from pymon.web.auth import (
    csrf_token,
    current_user,
    login_user,
    logout_user,
    require_read,
    require_write,
)
from pymon.web.commands import CommandError, MaintenanceCommand
from pymon.web.downsample import Sample, downsample
from pymon.web.proxy import public_prefix

if TYPE_CHECKING:
    from pymon.engine.ports import EnginePort, ServiceView
    from pymon.store.base import ResultRecord

__all__ = ["COLUMNS", "FLAGS", "PAGE_SIZE", "router"]

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

_STATUSES = tuple(s.value for s in Status)
_SEVERITY = {s.value: s.severity for s in Status}
_MAX_FORM = 64 * 1024
_CHART_POINTS = 200
_PROBLEMS_SHOWN = 100
_NO_STORE = {"Cache-Control": "no-store"}
# Pages carry no inline script or style, so the policy can forbid both: an injected
# tag that escaped escaping would still not run.
_SECURITY_HEADERS = {
    **_NO_STORE,
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

router = APIRouter(include_in_schema=False)


def _quote(name: str) -> str:
    return quote(name, safe="")


def _iso(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _absolute(ts: float | None) -> str:
    if ts is None:
        return "never"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _span(seconds: float) -> str:
    """A duration as people say it: ``300 ms``, ``45 s``, ``3 min``, ``2 h 5 min``, ``4 d 3 h``."""
    if 0 < seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    s = int(max(seconds, 0))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def _ago(ts: float | None) -> str:
    if ts is None:
        return "never"
    delta = time.time() - ts
    if -1 < delta < 1:
        return "just now"
    return f"in {_span(-delta)}" if delta < 0 else f"{_span(delta)} ago"


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
_env.filters.update(q=_quote, iso=_iso, absolute=_absolute, ago=_ago, span=_span, num=_number)
_env.globals.update(
    STATUSES=_STATUSES, FLAGS=FLAGS, COLUMNS=COLUMNS, version=__version__, PAGE_SIZE=PAGE_SIZE
)


def _port(request: Request) -> EnginePort:
    port: EnginePort = request.app.state.port
    return port


def _render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    html = _env.get_template(template).render(
        prefix=public_prefix(request),
        csrf=csrf_token(request),
        user=current_user(request),
        instance=_port(request).config.instance.name,
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers=_SECURITY_HEADERS)


async def _login_needed(request: Request) -> Response | None:
    """None when the visitor may read; else (reading needs credentials and there are
    none) a redirect to the login page that comes back here."""
    try:
        await require_read(request)
    except HTTPException as exc:
        if exc.status_code != 401:
            raise
        prefix = public_prefix(request)
        base = _port(request).config.web.base_path.rstrip("/")
        here = prefix + request.url.path[len(base) :]
        if request.url.query:
            here += f"?{request.url.query}"
        return RedirectResponse(f"{prefix}/login?{urlencode({'next': here})}", status_code=303)
    return None


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


async def _form(request: Request) -> dict[str, str]:
    """The fields of a urlencoded form post (the last value of a repeated field wins)."""
    if int(request.headers.get("content-length") or 0) > _MAX_FORM:
        raise HTTPException(413, "form too large")
    body = await request.body()
    if len(body) > _MAX_FORM:
        raise HTTPException(413, "form too large")
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(_STATUSES, 0)
    for row in rows:
        counts[row["status"]] += 1
    return counts


async def _events(
    port: EnginePort, *, limit: int, offset: int = 0, service: str | None = None
) -> list[dict[str, Any]]:
    return [e.to_dict() for e in (await port.events(offset + limit, service))[offset:]]


@router.get("/")
async def overview(request: Request) -> Response:
    """Counts per status, current problems (unacknowledged first), recent events, pymon."""
    if (login := await _login_needed(request)) is not None:
        return login
    port = _port(request)
    rows = [service_json(view) for view in await port.services()]
    started_at = port.health().started_at
    problems = [r for r in rows if Status(r["status"]).is_problem]
    problems.sort(key=lambda r: (r["acknowledged"], -_SEVERITY[r["status"]], r["name"]))
    return _render(
        request,
        "overview.html",
        page="overview",
        counts=_counts(rows),
        problems=problems[:_PROBLEMS_SHOWN],
        more_problems=max(len(problems) - _PROBLEMS_SHOWN, 0),
        events=await _events(port, limit=20),
        about={
            "started_at": started_at,
            "uptime": time.time() - started_at,
            "services": len(rows),
            "source": port.config.source,
            "checksum": port.config.checksum,
            "organization": port.config.instance.organization,
        },
    )


def _sort_keys(spec: str) -> list[tuple[str, bool]]:
    """``status,-name`` as [("status", ascending), ("name", descending)]; unknown keys dropped."""
    keys: list[tuple[str, bool]] = []
    for part in spec.split(","):
        part = part.strip()
        column = part.lstrip("-")
        if column in COLUMNS and column not in (k for k, _ in keys):
            keys.append((column, part.startswith("-")))
    return keys


_SORTERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "name": lambda r: r["name"].casefold(),
    "status": lambda r: _SEVERITY[r["status"]],
    "type": lambda r: r["type"],
    "message": lambda r: r["message"].casefold(),
    "last_check": lambda r: r["last_check"] or 0.0,
    "last_change": lambda r: r["last_change"] or 0.0,
    "tags": lambda r: ",".join(r["tags"]).casefold(),
}


def _matches(row: dict[str, Any], text: str, status: str, tag: str) -> bool:
    if status and row["status"] != status:
        return False
    if tag and tag not in row["tags"]:
        return False
    if not text:
        return True
    needle = text.casefold()
    return (
        needle in row["name"].casefold()
        or needle in row["message"].casefold()
        or any(needle in t.casefold() for t in row["tags"])
    )


@router.get("/services")
async def services(
    request: Request,
    q: str = Query("", max_length=200),
    status: str = Query("", max_length=20),
    tag: str = Query("", max_length=200),
    sort: str = Query("name", max_length=200),
    page: int = Query(1, ge=1, le=1_000_000),
) -> Response:
    """The services table: the first page of rows rendered here (filtered and sorted as
    asked), the rest fetched from the JSON API by ``table.js``."""
    if (login := await _login_needed(request)) is not None:
        return login
    views = await _port(request).services()
    rows = [r for view in views if _matches(r := service_json(view), q, status, tag)]
    keys = _sort_keys(sort) or [("name", False)]
    rows.sort(key=_SORTERS["name"])
    for column, descending in reversed(keys):
        rows.sort(key=_SORTERS[column], reverse=descending)
    pages = max(math.ceil(len(rows) / PAGE_SIZE), 1)
    page = min(page, pages)
    tags = sorted({t for view in views for t in view.config.tags})

    def link(**change: Any) -> str:
        params = {"q": q, "status": status, "tag": tag, "sort": sort, "page": page, **change}
        defaults = {("page", 1), ("sort", "name")}
        kept = {k: v for k, v in params.items() if v not in ("", None) and (k, v) not in defaults}
        return f"{public_prefix(request)}/services" + (f"?{urlencode(kept)}" if kept else "")

    def sort_link(column: str) -> str:
        first = keys[0] if keys else None
        flip = first is not None and first[0] == column and not first[1]
        return link(sort=f"-{column}" if flip else column, page=1)

    return _render(
        request,
        "services.html",
        page="services",
        rows=rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE],
        total=len(rows),
        all_total=len(views),
        current=page,
        pages=pages,
        filters={"q": q, "status": status, "tag": tag},
        sort=",".join(("-" if d else "") + c for c, d in keys),
        sorted_by=dict(keys),
        tags=tags,
        link=link,
        sort_link=sort_link,
    )


async def _lookup(port: EnginePort, name: str) -> ServiceView:
    view = await port.service(name)
    if view is None:
        raise HTTPException(404, f"no service named {name!r}")
    return view


def _metric_for_chart(points: Sequence[dict[str, Any]]) -> str | None:
    names = {m for p in points for m in p["metrics"]}
    for preferred in ("response_time_ms", "connect_ms"):
        if preferred in names:
            return preferred
    return next((m for p in reversed(points) for m in sorted(p["metrics"])), None)


def _chart(records: Sequence[ResultRecord]) -> dict[str, Any]:
    """Geometry of the history chart and the status timeline, drawn in a 600x160 box
    from the records downsampled as the history API does (``service.js`` redraws the
    same from ``/history?points=``)."""
    width, height, left, top, bottom = 600.0, 160.0, 48.0, 8.0, 24.0
    samples = [Sample(r.started_at, r.status, dict(r.metrics)) for r in records]
    points = [b.to_json() for b in downsample(samples, _CHART_POINTS)]
    metric = _metric_for_chart(points)
    if not points:
        return {"metric": metric, "path": "", "segments": [], "empty": True}
    t0: float = points[0]["start"]
    t1: float = points[-1]["start"]
    span = (t1 - t0) or 1.0

    def x(t: float) -> float:
        return round(left + (t - t0) / span * (width - left - 8), 1)

    values = [p["metrics"][metric]["avg"] for p in points if metric in p["metrics"]]
    vmax = max(values, default=0.0)
    vmin = min(min(values, default=0.0), 0.0)
    vspan = (vmax - vmin) or 1.0
    path: list[str] = []
    joined = False
    for p in points:
        if metric not in p["metrics"]:
            joined = False
            continue
        y = round(
            top + (1 - (p["metrics"][metric]["avg"] - vmin) / vspan) * (height - top - bottom), 1
        )
        path.append(f"{'L' if joined else 'M'}{x(p['start'])} {y}")
        joined = True
    segments: list[dict[str, Any]] = []
    for p in points:
        if segments and segments[-1]["status"] == p["status"]:
            segments[-1]["count"] += p["count"]
        else:
            segments.append({"status": p["status"], "since": p["start"], "count": p["count"]})
    for i, seg in enumerate(segments):
        end = segments[i + 1]["since"] if i + 1 < len(segments) else t1
        seg["x"] = x(seg["since"])
        seg["w"] = max(round(x(end) - seg["x"], 1), 2.0)
    return {
        "metric": metric,
        "path": " ".join(path),
        "segments": segments,
        "empty": not values,
        "vmax": vmax,
        "vmin": vmin,
        "t0": t0,
        "t1": t1,
    }


@router.get("/services/{name:path}")
async def service_page(request: Request, name: str, error: str = "") -> Response:
    """One service: status and flags, message, metrics, chart, timeline, events, actions."""
    if (login := await _login_needed(request)) is not None:
        return login
    port = _port(request)
    view = await _lookup(port, name)
    records = list(reversed(await port.history(name, port.config.storage.history)))
    config = view.config
    return _render(
        request,
        "service.html",
        page="services",
        s=service_json(view),
        thresholds={
            metric: spec.model_dump(mode="json", exclude_none=True)
            for metric, spec in config.thresholds.items()
        },
        chart=_chart(records),
        events=await _events(port, limit=50, service=name),
        error=error[:500],
    )


async def _answer(
    request: Request, name: str, message: str, status_code: int = 200, **extra: Any
) -> Response:
    """JSON with the service's new state for ``fetch``; a redirect to its page for a form."""
    if _wants_json(request):
        view = await _lookup(_port(request), name)
        body = {"message": message, "service": service_json(view), **extra}
        return JSONResponse(body, status_code=status_code, headers=_NO_STORE)
    url = f"{public_prefix(request)}/services/{_quote(name)}"
    if status_code >= 400:
        url += "?" + urlencode({"error": message})
    return RedirectResponse(url, status_code=303)


async def _refusal(request: Request, name: str, message: str, status_code: int = 409) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": message}, status_code=status_code, headers=_NO_STORE)
    return await _answer(request, name, message, status_code)


async def _known(request: Request, name: str) -> ServiceView:
    """The service ``name`` (404 when there is none)."""
    return await _lookup(_port(request), name)


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
    port = _port(request)
    form = await _form(request)
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
    change = _port(request).unacknowledge(name, user)
    return await _apply(request, name, change, f"acknowledgement taken back by {user}")


@router.post("/services/{name:path}/run")
async def run_action(request: Request, name: str, _: str = Depends(require_write)) -> Response:
    """Run the service's check now; the new state follows over the live stream."""
    await _known(request, name)
    try:
        await _port(request).run_now(name)
    except CommandRefused as exc:
        return await _refusal(request, name, str(exc))
    return await _answer(request, name, "check started", 202)


@router.post("/services/{name:path}/maintenance")
async def maintenance_action(
    request: Request, name: str, user: str = Depends(require_write)
) -> Response:
    """Put the service in maintenance from now for ``duration`` (e.g. ``2h``)."""
    await _known(request, name)
    port = _port(request)
    form = await _form(request)
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
    span = _span(window.end.timestamp() - window.start.timestamp())
    return await _answer(request, name, f"in maintenance for {span}", window=added.id)


def _schedule(window: MaintenanceWindow) -> str:
    if window.kind == "cron":
        return f"cron {window.cron} for {_span(window.duration or 0)} ({window.timezone})"
    if window.kind == "weekly":
        days = ", ".join(window.days or ())
        opens = window.from_.strftime("%H:%M") if window.from_ else "00:00"
        closes = window.to.strftime("%H:%M") if window.to else "24:00"
        return f"{days} {opens}\u2013{closes} ({window.timezone})"
    start = window.start.timestamp() if window.start else None
    end = window.end.timestamp() if window.end else None
    return f"{_absolute(start)} \u2013 {_absolute(end)}"


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
    if (login := await _login_needed(request)) is not None:
        return login
    return _render(
        request, "maintenance.html", page="maintenance", windows=_windows(_port(request))
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
    port = _port(request)
    form = await _form(request)
    try:
        window = MaintenanceCommand.parse(_command_fields(form)).to_window(user, port.now())
    except CommandError as exc:
        message = str(exc)
        if _wants_json(request):
            return JSONResponse({"error": message}, status_code=422, headers=_NO_STORE)
        return _render(
            request,
            "maintenance.html",
            422,
            page="maintenance",
            windows=_windows(port),
            error=message,
            form=form,
        )
    added = await port.add_maintenance(window)
    if _wants_json(request):
        return JSONResponse({"id": added.id}, status_code=201, headers=_NO_STORE)
    return RedirectResponse(f"{public_prefix(request)}/maintenance", status_code=303)


@router.post("/maintenance/{window_id}/delete")
async def delete_window(
    request: Request, window_id: str, _: str = Depends(require_write)
) -> Response:
    """Remove an ad hoc window (config windows change with the config only)."""
    if not await _port(request).remove_maintenance(window_id):
        raise HTTPException(404, f"no ad hoc maintenance window {window_id!r}")
    if _wants_json(request):
        return JSONResponse({"deleted": window_id}, headers=_NO_STORE)
    return RedirectResponse(f"{public_prefix(request)}/maintenance", status_code=303)


@router.get("/events")
async def events(
    request: Request,
    page: int = Query(1, ge=1, le=100),
    service: str = Query("", max_length=1000),
) -> Response:
    """The newest transitions, newest first, a page at a time (of one service if given)."""
    if (login := await _login_needed(request)) is not None:
        return login
    rows = await _events(
        _port(request), limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE, service=service or None
    )
    prefix = public_prefix(request)

    def link(to: int) -> str:
        params = {"page": to, **({"service": service} if service else {})}
        return f"{prefix}/events?{urlencode(params)}"

    return _render(
        request,
        "events.html",
        page="events",
        events=rows[:PAGE_SIZE],
        current=page,
        previous=link(page - 1) if page > 1 else None,
        next=link(page + 1) if len(rows) > PAGE_SIZE and page < 100 else None,
        service=service,
    )


def _storage(url: str) -> dict[str, str]:
    """Backend and location of the store, never the user, password or query."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return {"backend": "unknown", "where": ""}
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return {"backend": backend, "where": parsed.database or ":memory:"}
    port = f":{parsed.port}" if parsed.port else ""
    return {"backend": backend, "where": f"{parsed.host or ''}{port}/{parsed.database or ''}"}


@router.get("/health")
async def health(request: Request) -> Response:
    """Config, last reload, storage, queues and the acknowledgement server's counters."""
    if (login := await _login_needed(request)) is not None:
        return login
    port = _port(request)
    summary = await api.healthz(request)
    pending = await port.deliveries(state="pending", limit=1001)
    acks = port.health().acks
    return _render(
        request,
        "health.html",
        page="health",
        h=summary,
        reload=summary.get("reload"),
        storage=_storage(port.config.storage.url),
        outbox_pending="1000+" if len(pending) > 1000 else str(len(pending)),
        acks=None
        if acks is None
        else {
            "accepted": acks.accepted,
            "refused": acks.refused,
            "failed": acks.failed,
            "port": acks.port,
        },
    )


def _csrf_ok(request: Request, form: dict[str, str]) -> bool:
    return hmac.compare_digest(form.get("csrf_token", "").encode(), csrf_token(request).encode())


@router.get("/login")
async def login_form(request: Request) -> Response:
    """The sign-in form (``next``: where to go after signing in)."""
    return _render(request, "login.html", page="login", next=request.query_params.get("next", ""))


def _login_again(request: Request, form: dict[str, str], status_code: int, error: str) -> Response:
    """The sign-in form again with ``error``, keeping the name and ``next`` that were sent."""
    return _render(
        request,
        "login.html",
        status_code,
        page="login",
        error=error,
        username=form.get("username", "")[:200],
        next=form.get("next", ""),
    )


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the name and password; on success set the session and go to the overview."""
    form = await _form(request)
    if not _csrf_ok(request, form):
        return _login_again(request, form, 403, "the form expired: please sign in again")
    done = await login_user(
        request, form.get("username", ""), form.get("password", ""), form.get("next") or None
    )
    if done is None:
        return _login_again(request, form, 401, "wrong name or password")
    return done


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session and go to the overview."""
    form = await _form(request)
    if not _csrf_ok(request, form):
        raise HTTPException(403, "missing or wrong CSRF token")
    response = RedirectResponse(f"{public_prefix(request)}/", status_code=303)
    logout_user(response, request)
    return response
