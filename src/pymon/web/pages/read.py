"""The pages that show: the overview, the services table, one service, the events, the
cluster's nodes and the health page (each sends a reader without credentials to the login page when
reading needs them)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from pymon.locations import listed
from pymon.web.api.system import healthz
from pymon.web.engine import lookup, port_of
from pymon.web.pages.chart import chart
from pymon.web.pages.render import (
    COLUMNS,
    PAGE_SIZE,
    SEVERITY,
    event_rows,
    login_needed,
    render,
)
from pymon.web.proxy import public_prefix
from pymon.web.uptime import SHOWN_WINDOWS, uptime_of
from pymon.web.views import node_json, service_json

if TYPE_CHECKING:
    from pymon.engine.ports import EnginePort, ServiceView

__all__ = ["router"]

router = APIRouter()

_PROBLEMS_SHOWN = 100


@router.get("/")
async def overview(request: Request) -> Response:
    """Counts per status, current problems (unacknowledged first), recent events, pymon."""
    if (login := await login_needed(request)) is not None:
        return login
    port = port_of(request)
    views = listed(await port.services())
    started_at = port.health().started_at
    problems = [service_json(view) for view in views if view.state.status.is_problem]
    problems.sort(key=lambda r: (r["acknowledged"], -SEVERITY[r["status"]], r["name"]))
    return render(
        request,
        "overview.html",
        page="overview",
        counts=await port.status_counts(),
        problems=problems[:_PROBLEMS_SHOWN],
        more_problems=max(len(problems) - _PROBLEMS_SHOWN, 0),
        events=await event_rows(port, limit=20),
        about={
            "started_at": started_at,
            "uptime": time.time() - started_at,
            "services": len(views),
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


# The table's sort keys, read off the views: the page makes the JSON of the rows it
# shows only, not of every service it sorts (10,000 of them cost ~40 ms more).
_SORTERS: dict[str, Callable[[ServiceView], Any]] = {
    "name": lambda v: v.name.casefold(),
    "status": lambda v: v.state.status.severity,
    "type": lambda v: v.config.type,
    "message": lambda v: v.state.message.casefold(),
    "last_check": lambda v: v.state.last_check or 0.0,
    "last_change": lambda v: v.state.last_change or 0.0,
    "tags": lambda v: ",".join(v.config.tags).casefold(),
}


def _matches(view: ServiceView, text: str, status: str, tag: str) -> bool:
    if status and view.state.status.value != status:
        return False
    if tag and tag not in view.config.tags:
        return False
    if not text:
        return True
    needle = text.casefold()
    return (
        needle in view.name.casefold()
        or needle in view.state.message.casefold()
        or any(needle in t.casefold() for t in view.config.tags)
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
    if (login := await login_needed(request)) is not None:
        return login
    views = listed(await port_of(request).services())
    rows = [view for view in views if _matches(view, q, status, tag)]
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

    return render(
        request,
        "services.html",
        page="services",
        rows=[service_json(view) for view in rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]],
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


@router.get("/services/{name:path}")
async def service_page(request: Request, name: str, error: str = "") -> Response:
    """One service: status and flags, message, metrics, chart, timeline, events, actions."""
    if (login := await login_needed(request)) is not None:
        return login
    port = port_of(request)
    view = await lookup(port, name)
    records = list(reversed(await port.history(name, port.config.storage.history)))
    config = view.config
    return render(
        request,
        "service.html",
        page="services",
        s=service_json(view),
        thresholds={
            metric: spec.model_dump(mode="json", exclude_none=True)
            for metric, spec in config.thresholds.items()
        },
        chart=chart(records, config.interval),
        uptime=await _uptimes(port, name),
        events=await event_rows(port, limit=50, service=name),
        error=error[:500],
    )


async def _uptimes(port: EnginePort, name: str) -> list[tuple[str, float | None]]:
    """``name``'s uptime % over the windows the page shows (None: no data), read as
    the uptime API reads them."""
    now = port.now()
    return [
        (label, (await uptime_of(port, [name], now - seconds, now))[name].uptime_pct)
        for label, seconds in SHOWN_WINDOWS
    ]


@router.get("/events")
async def events(
    request: Request,
    page: int = Query(1, ge=1, le=100),
    service: str = Query("", max_length=1000),
) -> Response:
    """The newest transitions, newest first, a page at a time (of one service if given)."""
    if (login := await login_needed(request)) is not None:
        return login
    rows = await event_rows(
        port_of(request),
        limit=PAGE_SIZE + 1,
        offset=(page - 1) * PAGE_SIZE,
        service=service or None,
    )
    prefix = public_prefix(request)

    def link(to: int) -> str:
        params = {"page": to, **({"service": service} if service else {})}
        return f"{prefix}/events?{urlencode(params)}"

    return render(
        request,
        "events.html",
        page="events",
        events=rows[:PAGE_SIZE],
        current=page,
        previous=link(page - 1) if page > 1 else None,
        next=link(page + 1) if len(rows) > PAGE_SIZE and page < 100 else None,
        service=service,
    )


@router.get("/nodes")
async def nodes(request: Request) -> Response:
    """The cluster's nodes: alive or gone, shards, heartbeat age, checks/s, config, location."""
    if (login := await login_needed(request)) is not None:
        return login
    port = port_of(request)
    rows = [node_json(node) for node in await port.nodes()]
    return render(
        request,
        "nodes.html",
        page="nodes",
        nodes=rows,
        shards=port.config.cluster.shards,
        checksum=port.config.checksum,
        me=port.health().cluster.node,
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
    if (login := await login_needed(request)) is not None:
        return login
    port = port_of(request)
    summary = await healthz(request)
    pending = await port.deliveries(state="pending", limit=1001)
    acks = port.health().acks
    return render(
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
